#!/usr/bin/env bash
# Runs a command with the real LiteLLM proxy (the shared test peer) running, its address in
# LITELLM_URL / LITELLM_MASTER_KEY. Starts the peer when it is not already answering and stops
# it afterwards (only if it started it). Fails (never skips) when the peer cannot be had.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

KIT=""
for dir in "${LITELLM_PEER_DIR:-}" "$ROOT/../shared/litellm-peer" /work/shared/litellm-peer; do
  if [ -n "$dir" ] && [ -x "$dir/start.sh" ]; then KIT=$(cd "$dir" && pwd); break; fi
done
[ -n "$KIT" ] || {
  echo "with-litellm: ERROR: the LiteLLM peer kit was not found (set LITELLM_PEER_DIR)" >&2
  exit 1
}

# Keep the peer's state out of /root (start.sh would otherwise open up its permissions).
export LITELLM_PEER_HOME=${LITELLM_PEER_HOME:-/var/tmp/litellm-peer}
PORT=${LITELLM_PORT:-4000}
started=0
if curl -fsS -m 2 "http://127.0.0.1:$PORT/health/liveliness" >/dev/null 2>&1; then
  echo "with-litellm: using the LiteLLM peer already running on port $PORT" >&2
else
  started=1
fi
t0=$(date +%s)
# Idempotent: also just prints the address when the peer already runs.
ENV_LINE=$("$KIT/start.sh")
eval "export $ENV_LINE"
echo "with-litellm: LiteLLM at $LITELLM_URL (ready after $(( $(date +%s) - t0 )) s)" >&2

cleanup() {
  if [ "$started" = 1 ]; then "$KIT/stop.sh" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
"$@"
