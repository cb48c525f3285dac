#!/usr/bin/env bash
# Browser tests of the web UI against the real stack: Debian's chromium driven by playwright-core
# (no browser download), a real registry:2 in htpasswd mode and the real binary on free loopback
# ports, images pushed with skopeo. Takes a screenshot of each page (into docs/screenshots/ with
# UPDATE_SCREENSHOTS=1) and ends with `N passed, N failed`; exits non-zero when anything failed.
#   scripts/ui-test.sh          the tests
#   scripts/ui-test.sh bench    the 2,000-repository benchmark instead (tests-ui/bench.mjs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode="${1:-test}"

scripts/install-deps.sh docker-registry skopeo apache2-utils chromium
command -v node >/dev/null || scripts/install-deps.sh nodejs npm
(cd tests-ui && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2)
cargo build --locked --bin registry-admin >&2
bin="$root/target/debug/registry-admin"

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_for() { # URL EXPECTED-STATUS WHAT
  for _ in $(seq 1 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [ "$code" = "$2" ] && return 0
    sleep 0.1
  done
  echo "timed out waiting for $3 ($1)" >&2
  return 1
}

admin_password="ui-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
events_token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$tmp/auth" "$tmp/logs" "$tmp/data"

# Waits until the log FILE of process PID holds LINE; fails when the process is gone first.
wait_for_log() { # PID FILE LINE
  for _ in $(seq 1 200); do
    kill -0 "$1" 2>/dev/null || return 1
    grep -qF "$3" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for \"$3\" in $2" >&2
  exit 1
}

# Starts registry-admin (on a port it picks itself) and registry:2 (on a picked one, since
# registry-admin must know it first). A picked port can be taken by another process before the
# registry binds it, so the registry counts as started only once its own log says it listens
# there; otherwise both start again on new ports.
start_stack() {
  reg_port=$(free_port)
  # registry-admin first: it writes the htpasswd (admin + its service account) that registry:2 reads.
  env -i PATH="$PATH" HOME="$tmp" \
    BIND_ADDR="127.0.0.1:0" REGISTRY_URL="http://127.0.0.1:$reg_port" \
    HTPASSWD_PATH="$tmp/auth/htpasswd" AUDIT_LOG_PATH="$tmp/logs/audit.log" \
    ADMIN_USERNAME=admin ADMIN_PASSWORD="$admin_password" BCRYPT_COST=4 \
    EVENTS_TOKEN="$events_token" PUBLIC_REGISTRY_HOST="registry.example.test:5000" \
    REGISTRY_CONFIG="$root/registry/config.htpasswd.yml" REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$tmp/data" \
    REGISTRY_BIN=/usr/bin/docker-registry GC_UNTAGGED_GRACE=0 \
    RUST_LOG=warn "$bin" >"$tmp/logs/app.log" 2>&1 &
  app_pid=$!
  pids+=("$app_pid")
  wait_for_log "$app_pid" "$tmp/logs/app.log" "registry-admin: listening on " \
    || { echo "registry-admin failed to start:" >&2; cat "$tmp/logs/app.log" >&2; exit 1; }
  app_port=$(sed -n 's|.*registry-admin: listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/logs/app.log" | head -n1)
  wait_for "http://127.0.0.1:$app_port/health/live" 200 registry-admin || exit 1
  # The registry runs the repository's own htpasswd-mode config (registry/config.htpasswd.yml, as
  # scripts/stack.sh does), with only the host-specific keys overridden: registry:2 reads every
  # REGISTRY_* variable as an override of a config key.
  reg_overrides=(
    REGISTRY_HTTP_ADDR="127.0.0.1:$reg_port"
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$tmp/data"
    REGISTRY_AUTH_HTPASSWD_PATH="$tmp/auth/htpasswd"
    REGISTRY_NOTIFICATIONS_ENDPOINTS="[{name: registry-admin, url: 'http://127.0.0.1:$app_port/events', headers: {Authorization: ['Bearer $events_token']}, timeout: 2s, threshold: 3, backoff: 1s}]"
  )
  env -i PATH="$PATH" "${reg_overrides[@]}" \
    /usr/bin/docker-registry serve "$root/registry/config.htpasswd.yml" >"$tmp/logs/registry.log" 2>&1 &
  reg_pid=$!
  pids+=("$reg_pid")
  if ! wait_for_log "$reg_pid" "$tmp/logs/registry.log" "listening on 127.0.0.1:$reg_port"; then
    grep -q "address already in use" "$tmp/logs/registry.log" \
      || { echo "registry:2 failed to start:" >&2; cat "$tmp/logs/registry.log" >&2; exit 1; }
    kill "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
    return 1
  fi
  wait_for "http://127.0.0.1:$reg_port/v2/" 401 registry:2 || exit 1
}
started=""
for _ in 1 2 3 4 5; do
  if start_stack; then started=1; break; fi
  echo "port $reg_port was taken by another process; starting again on new ports" >&2
done
[ -n "$started" ] || { echo "lost the picked port 5 times in a row" >&2; exit 1; }

# A second registry-admin in token mode, with files of its own, for the robot accounts page
# (robots exist in token mode only). Its pages never need the registry, so it shares the one above.
token_port=$(free_port)
mkdir -p "$tmp/token/auth" "$tmp/token/logs"
env -i PATH="$PATH" HOME="$tmp" AUTH_MODE=token \
  BIND_ADDR="127.0.0.1:$token_port" REGISTRY_URL="http://127.0.0.1:$reg_port" \
  HTPASSWD_PATH="$tmp/token/auth/htpasswd" AUDIT_LOG_PATH="$tmp/token/logs/audit.log" \
  REGISTRY_TOKEN_KEY="$tmp/token/auth/token.key" \
  ADMIN_USERNAME=admin ADMIN_PASSWORD="$admin_password" BCRYPT_COST=4 \
  PUBLIC_REGISTRY_HOST="registry.example.test:5000" \
  RUST_LOG=warn "$bin" >"$tmp/logs/token-app.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$token_port/health/live" 200 "registry-admin (token mode)"

node tests-ui/seed.mjs layout "$tmp/layout"
push() { # LAYOUT-TAG NAME:TAG [--all]
  skopeo copy --quiet ${3:-} --dest-tls-verify=false --dest-creds "admin:$admin_password" \
    "oci:$tmp/layout:$1" "docker://127.0.0.1:$reg_port/$2" >&2
}
if [ "$mode" = bench ]; then
  push one seed/base:v1
  node tests-ui/seed.mjs mount "http://127.0.0.1:$reg_port" "admin:$admin_password" seed/base v1 bench/repo- 2000
else
  push one team/app:v1
  push one team/app:latest
  push one team/app:stable
  push two team/app:v2
  push multi team/multi:1.0 --all
  push two library/base:3
  push one tools:edge
fi

export BASE_URL="http://127.0.0.1:$app_port" REGISTRY_URL="http://127.0.0.1:$reg_port"
export TOKEN_BASE_URL="http://127.0.0.1:$token_port"
export ADMIN_USER=admin ADMIN_PASSWORD="$admin_password" EVENTS_TOKEN="$events_token"
# Screenshots go to a scratch folder unless asked for: a test run leaves the checkout as it was.
if [ "${UPDATE_SCREENSHOTS:-}" = 1 ]; then
  SCREENSHOT_DIR="$root/docs/screenshots"
fi
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$tmp/screenshots}" CHROMIUM=/usr/bin/chromium
mkdir -p "$SCREENSHOT_DIR"
status=0
if [ "$mode" = bench ]; then
  node tests-ui/bench.mjs || status=$?
else
  node tests-ui/run.mjs || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "--- registry-admin log (tail) ---" >&2; tail -n 30 "$tmp/logs/app.log" >&2 || true
fi
exit "$status"
