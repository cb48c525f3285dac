#!/usr/bin/env bash
# Starts the stack (scripts/stack.sh) and runs schemathesis against its OpenAPI document with
# admin credentials: no 5xx, and every response must conform to the document.
set -euo pipefail
cd "$(dirname "$0")/.."

export ADMIN_PASSWORD="${ADMIN_PASSWORD:-conformance-admin-$$}"
export EVENTS_TOKEN="${EVENTS_TOKEN:-conformance-events-$$-0123456789abcdef0123}"
venv="${SCHEMATHESIS_VENV:-$HOME/.cache/registry-admin/schemathesis}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi

# Built first, outside the start-up wait below: a cold release build can take longer than it.
cargo build --release --locked

log=$(mktemp)
scripts/stack.sh >"$log" 2>&1 &
stack=$!
cleanup() { kill "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  grep -q "Ctrl-C stops both" "$log" && break
  kill -0 "$stack" 2>/dev/null || { cat "$log"; echo "the stack did not start" >&2; exit 1; }
  sleep 1
done
grep -q "Ctrl-C stops both" "$log" || { cat "$log"; echo "the stack did not start in time" >&2; exit 1; }

"$venv/bin/schemathesis" run http://127.0.0.1:5001/openapi.json \
  --auth "admin:$ADMIN_PASSWORD" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --seed 1 \
  --workers 1
