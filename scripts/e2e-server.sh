#!/usr/bin/env bash
# Starts the release build of tokenmeter for the browser tests: a fresh SQLite database in a
# temporary folder, a known admin, and the site built by `cargo leptos build --release --split
# --precompress` in target/site (as `make run` serves it).
set -euo pipefail
port=${1:-3180}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/release/tokenmeter"
[ -x "$bin" ] || { echo "e2e-server: $bin is missing: run 'cargo leptos build --release --precompress --split' first" >&2; exit 1; }
dir=$(mktemp -d /tmp/tokenmeter-e2e.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$root"
if [ "${E2E_LITELLM:-}" = 1 ]; then
  # Behind the real LiteLLM peer (make test starts it): fail, never fall back, without it.
  [ -n "${LITELLM_URL:-}" ] && [ -n "${LITELLM_MASTER_KEY:-}" ] || {
    echo "e2e-server: E2E_LITELLM=1 needs LITELLM_URL and LITELLM_MASTER_KEY (the LiteLLM peer)" >&2
    exit 1
  }
  export TOKENMETER_SECRET=e2e-secret TOKENMETER_JOB_POLL_MS=200
  unset LLM_BASE_URL LLM_API_KEY
else
  # The demo model, whatever upstream the calling shell points at.
  unset LITELLM_URL LITELLM_MASTER_KEY LLM_BASE_URL LLM_API_KEY
fi
export DATABASE_URL="sqlite://$dir/e2e.db"
export TOKENMETER_ADDR="127.0.0.1:$port"
export TOKENMETER_ADMIN_EMAIL=admin@example.com
export TOKENMETER_ADMIN_PASSWORD=admin-password-1
export LEPTOS_SITE_ROOT="$root/target/site"
export LEPTOS_ENV=PROD
export RUST_LOG=${RUST_LOG:-warn}
# Not UTC, so that the pages show they use the configured zone (+05:30, no summer time).
export TOKENMETER_TIMEZONE=${TOKENMETER_TIMEZONE:-Asia/Kolkata}
# The browser tests sign up many users from one address (approval has a test of its own).
export TOKENMETER_SIGNUP=${TOKENMETER_SIGNUP:-open}
export TOKENMETER_SIGNUPS_PER_IP_PER_HOUR=${TOKENMETER_SIGNUPS_PER_IP_PER_HOUR:-100000}
# The demo model streams at a pace a test can watch and stop.
export TOKENMETER_DEMO_DELAY_MS=${TOKENMETER_DEMO_DELAY_MS:-20}
"$bin" serve
