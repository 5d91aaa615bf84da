#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster on a loopback port, exported as
# TEST_DATABASE_URL, and removes the cluster afterwards. With TEST_DATABASE_URL already set,
# runs the command against that server instead. Fails (never skips) when no server can be had.
set -euo pipefail

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "with-postgres: installing PostgreSQL (apt-get)" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
[ -x "$PGBIN/initdb" ] || { echo "with-postgres: ERROR: no initdb after installing postgresql" >&2; exit 1; }

PORT=${TEST_PG_PORT:-54339}
DIR=$(mktemp -d /var/tmp/tokenmeter-pg.XXXXXX)
chmod 755 "$DIR"
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && su -s /bin/sh postgres -c "$1"); else (cd / && sh -c "$1"); fi
}
[ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"

cleanup() {
  as_pg "'$PGBIN/pg_ctl' -D '$DIR/data' -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

as_pg "'$PGBIN/initdb' -D '$DIR/data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; echo "with-postgres: ERROR: initdb failed" >&2; exit 1; }
as_pg "'$PGBIN/pg_ctl' -D '$DIR/data' -l '$DIR/postgres.log' -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $PORT -k '$DIR' -c fsync=off -c max_connections=300\" start" >/dev/null \
  || { tail -20 "$DIR/postgres.log" >&2; echo "with-postgres: ERROR: postgres did not start on port $PORT" >&2; exit 1; }

export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL ($("$PGBIN/postgres" --version | awk '{print $3}')) on 127.0.0.1:$PORT" >&2
"$@"
