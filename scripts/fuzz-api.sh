#!/usr/bin/env bash
# Fuzzes the whole REST API with schemathesis (pinned, in its own venv) against a real server:
# on SQLite, and on PostgreSQL when TEST_DATABASE_URL names a server (scripts/with-postgres.sh),
# each signed in as a user and as an admin (personal API tokens), every operation of
# /api/openapi.json, checks not_a_server_error and response_schema_conformance. Fails on any
# failure, and when PostgreSQL was asked for (FUZZ_POSTGRES=1, the default) and is missing.
#   FUZZ_EXAMPLES   examples per operation and phase (default 30)
#   FUZZ_BIN        the server binary (default: $CARGO_TARGET_DIR/debug/tokenmeter)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${FUZZ_EXAMPLES:-30}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${FUZZ_BIN:-$TARGET/debug/tokenmeter}
LOGS=${FUZZ_LOGS:-$ROOT/target/test-logs}
mkdir -p "$LOGS"

# The fuzzer, once per machine, in its own venv outside the clone.
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/tokenmeter/schemathesis-$SCHEMATHESIS_VERSION
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  echo "fuzz-api: installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
[ -x "$BIN" ] || { echo "fuzz-api: ERROR: no server binary at $BIN (cargo build --features ssr)" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# fuzz_on <label> <database url>
fuzz_on() {
  local label=$1 url=$2 port base pid status=0
  port=$(free_port)
  base="http://127.0.0.1:$port"
  DATABASE_URL="$url" TOKENMETER_ADDR="127.0.0.1:$port" TOKENMETER_SIGNUP=open \
    TOKENMETER_SIGNUPS_PER_IP_PER_HOUR=100000 TOKENMETER_DEMO_DELAY_MS=0 \
    TOKENMETER_ADMIN_EMAIL=admin@example.com TOKENMETER_ADMIN_PASSWORD=fuzz-admin-password \
    RUST_LOG=warn "$BIN" serve >"$LOGS/fuzz-$label-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fsS -m 1 "$base/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fsS -m 2 "$base/readyz" >/dev/null || { echo "fuzz-api: ERROR: the server did not start ($label)" >&2; kill $pid; return 1; }

  # A user and an admin, each with a personal API token.
  local jar user_token admin_token
  jar=$(mktemp)
  curl -fsS -c "$jar" -H 'Content-Type: application/json' \
    -d '{"email":"fuzz-user@example.com","password":"fuzz-user-password"}' "$base/api/auth/signup" >/dev/null
  user_token=$(curl -fsS -b "$jar" -H "Origin: $base" -H 'Content-Type: application/json' \
    -d '{"name":"fuzz"}' "$base/api/profile/tokens" | json_field "['data']['secret']")
  curl -fsS -c "$jar" -H 'Content-Type: application/json' \
    -d '{"email":"admin@example.com","password":"fuzz-admin-password"}' "$base/api/auth/login" >/dev/null
  admin_token=$(curl -fsS -b "$jar" -H "Origin: $base" -H 'Content-Type: application/json' \
    -d '{"name":"fuzz"}' "$base/api/profile/tokens" | json_field "['data']['secret']")
  rm -f "$jar"

  for who in user admin; do
    local token=$user_token
    [ "$who" = admin ] && token=$admin_token
    echo "fuzz-api: $label as $who ($EXAMPLES examples per operation and phase)" >&2
    # From the scratch dir: schemathesis keeps its cache (.schemathesis/) in its working dir.
    # The jobs event stream is left out: a valid request is a stream that lasts 10 minutes
    # (its parameters are GET /api/admin/jobs's, fuzzed there; tests/jobs_api.rs checks its 400s).
    if ! (cd "$dir" && "$VENV/bin/schemathesis" --no-color run "$base/api/openapi.json" \
        --checks not_a_server_error,response_schema_conformance \
        --exclude-path /api/admin/jobs/events \
        -H "Authorization: Bearer $token" --max-examples "$EXAMPLES" \
        `# One worker: CPython 3.11's ast.parse is not thread-safe (hypothesis calls it).` \
        --workers 1) >"$LOGS/fuzz-$label-$who.log" 2>&1; then
      status=1
    fi
    # The summary: how many cases, and any failure.
    grep -E "generated|failure|❌" "$LOGS/fuzz-$label-$who.log" | sed "s/^/fuzz-api: $label $who: /" >&2 || true
  done
  kill $pid; wait $pid 2>/dev/null || true
  if grep -q "panicked" "$LOGS/fuzz-$label-server.log"; then
    echo "fuzz-api: ERROR: the server panicked ($label), see $LOGS/fuzz-$label-server.log" >&2
    status=1
  fi
  return $status
}

status=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fuzz_on sqlite "sqlite://$dir/fuzz.db?mode=rwc" || status=1
if [ "${FUZZ_POSTGRES:-1}" = 1 ]; then
  [ -n "${TEST_DATABASE_URL:-}" ] || { echo "fuzz-api: ERROR: TEST_DATABASE_URL is not set (run under scripts/with-postgres.sh)" >&2; exit 1; }
  db="fuzz_$(date +%s)_$$"
  psql "$TEST_DATABASE_URL" -qc "create database $db" >/dev/null
  fuzz_on postgres "${TEST_DATABASE_URL%/*}/$db" || status=1
  psql "$TEST_DATABASE_URL" -qc "drop database $db with (force)" >/dev/null || true
fi
[ $status = 0 ] && echo "fuzz-api: no failures" >&2 || echo "fuzz-api: FAILED (logs in $LOGS/fuzz-*.log)" >&2
exit $status
