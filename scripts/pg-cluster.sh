#!/usr/bin/env bash
# A PostgreSQL cluster a test may stop and start (the PostgreSQL restart test):
#   pg-cluster.sh init DIR PORT   initdb + start on 127.0.0.1:PORT (trust auth)
#   pg-cluster.sh stop DIR        fast shutdown (clients are disconnected)
#   pg-cluster.sh start DIR PORT  start again
#   pg-cluster.sh destroy DIR     immediate shutdown, then the folder is removed
# As root the server runs as the `postgres` user, as scripts/with-postgres.sh does.
set -euo pipefail
cmd=${1:?init|stop|start|destroy}
DIR=${2:?folder}
PORT=${3:-}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -x "$PGBIN/initdb" ] || { echo "pg-cluster: ERROR: no PostgreSQL (apt-get install postgresql)" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && su -s /bin/sh postgres -c "$1"); else (cd / && sh -c "$1"); fi
}
start() {
  as_pg "'$PGBIN/pg_ctl' -D '$DIR/data' -l '$DIR/postgres.log' -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $PORT -k '$DIR' -c fsync=off\" start" >/dev/null \
    || { tail -20 "$DIR/postgres.log" >&2; exit 1; }
}
case $cmd in
  init)
    mkdir -p "$DIR"; chmod 755 "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    as_pg "'$PGBIN/initdb' -D '$DIR/data' -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    start ;;
  start) start ;;
  stop) as_pg "'$PGBIN/pg_ctl' -D '$DIR/data' -m fast -w stop" >/dev/null ;;
  destroy)
    as_pg "'$PGBIN/pg_ctl' -D '$DIR/data' -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$DIR" ;;
  *) echo "pg-cluster: unknown command $cmd" >&2; exit 1 ;;
esac
