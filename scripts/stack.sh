#!/usr/bin/env bash
# Starts the whole stack on this machine: a registry on :5000 and registry-admin on :5001,
# sharing ./auth. Token mode by default (the registry trusts registry-admin's GET /token, so roles
# and grants hold at the registry); AUTH_MODE=htpasswd runs the registry on the shared htpasswd.
# The registry is Debian's registry 2.8 (docker-registry) unless REGISTRY_BIN names another
# binary, e.g. Distribution 3's `registry`: REGISTRY_BIN=/path/to/registry scripts/stack.sh.
# registry-admin's garbage collection runs the same binary.
# Runs in the foreground; Ctrl-C stops both.
# Settings come from the environment or from ./.env (see .env.example).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install a current Rust toolchain (rustup), then run this again" >&2
  exit 1
fi
if [ -f .env ]; then
  set -a; . ./.env; set +a
fi
if [ -n "${REGISTRY_BIN:-}" ]; then
  [ -x "$REGISTRY_BIN" ] || { echo "REGISTRY_BIN=$REGISTRY_BIN is not an executable" >&2; exit 2; }
  scripts/install-deps.sh curl
else
  scripts/install-deps.sh docker-registry curl
  REGISTRY_BIN=/usr/bin/docker-registry
fi
export REGISTRY_BIN

# Debian's package may have started its own registry (with a config we must not use) on :5000.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  echo "stopping the docker-registry system service, which holds :5000" >&2
  sudo="" ; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo systemctl disable --now docker-registry
fi

cargo build --release --locked
mkdir -p auth logs data/registry

export HTPASSWD_PATH="${HTPASSWD_PATH:-$root/auth/htpasswd}"
export AUDIT_LOG_PATH="${AUDIT_LOG_PATH:-$root/logs/audit.log}"
export REGISTRY_URL="${REGISTRY_URL:-http://127.0.0.1:5000}"
export BIND_ADDR="${BIND_ADDR:-0.0.0.0:5001}"
export PUBLIC_REGISTRY_HOST="${PUBLIC_REGISTRY_HOST:-localhost:5000}"
export AUTH_MODE="${AUTH_MODE:-token}"
export REGISTRY_TOKEN_KEY="${REGISTRY_TOKEN_KEY:-$root/auth/token.key}"
# Where clients (docker, podman, skopeo) reach registry-admin's /token: registry:2 sends them there.
TOKEN_REALM="${TOKEN_REALM:-http://localhost:${BIND_ADDR##*:}/token}"
case "$AUTH_MODE" in
  token|htpasswd) ;;
  *) echo "AUTH_MODE must be token or htpasswd, not $AUTH_MODE" >&2; exit 2 ;;
esac
config=registry/config.yml
[ "$AUTH_MODE" = token ] || config=registry/config.htpasswd.yml
# Garbage collection runs the registry binary on the registry's own config, with the same
# storage override the registry gets below.
export REGISTRY_CONFIG="${REGISTRY_CONFIG:-$root/$config}"
export REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$root/data/registry"
# registry:2 sends its events with this token; without one in .env, this run makes its own.
export EVENTS_TOKEN="${EVENTS_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# registry-admin first: it writes the htpasswd (admin, and in htpasswd mode its service account)
# and, in token mode, token.crt, before registry:2 reads them; a registry that starts without the
# htpasswd provisions a user of its own, and one without token.crt panics.
target/release/registry-admin &
pids+=($!)
for _ in $(seq 1 100); do
  kill -0 "${pids[0]}" 2>/dev/null || { echo "registry-admin failed to start" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:${BIND_ADDR##*:}/health/live" >/dev/null 2>&1 && break
  sleep 0.1
done

# registry:2 reads every REGISTRY_* variable as a config override (docs/registry-facts.md), so it
# gets a clean environment holding only overrides of real config keys, never our settings.
overrides=(
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$root/data/registry"
  REGISTRY_NOTIFICATIONS_ENDPOINTS="[{name: registry-admin, url: 'http://127.0.0.1:${BIND_ADDR##*:}/events', headers: {Authorization: ['Bearer $EVENTS_TOKEN']}, timeout: 2s, threshold: 5, backoff: 1s}]"
)
if [ "$AUTH_MODE" = token ]; then
  cert="$(dirname "$REGISTRY_TOKEN_KEY")/token.crt"
  [ -f "$cert" ] || { echo "registry-admin did not write $cert" >&2; exit 1; }
  overrides+=(
    REGISTRY_AUTH_TOKEN_REALM="$TOKEN_REALM"
    REGISTRY_AUTH_TOKEN_SERVICE="${REGISTRY_TOKEN_SERVICE:-registry}"
    REGISTRY_AUTH_TOKEN_ISSUER="${REGISTRY_TOKEN_ISSUER:-registry-admin}"
    REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE="$cert"
  )
else
  overrides+=(REGISTRY_AUTH_HTPASSWD_PATH="$HTPASSWD_PATH")
fi
env -i PATH="$PATH" "${overrides[@]}" \
  "$REGISTRY_BIN" serve "$config" >logs/registry.log 2>&1 &
pids+=($!)
# Ready once *our* registry says it listens (another process answering :5000 does not count).
for _ in $(seq 1 100); do
  kill -0 "${pids[1]}" 2>/dev/null || { echo "the registry failed to start; see logs/registry.log" >&2; exit 1; }
  grep -q 'listening on' logs/registry.log && curl -s -o /dev/null "http://127.0.0.1:5000/v2/" && break
  sleep 0.1
done

cat <<MSG

  registry         http://localhost:5000   (log: logs/registry.log; ${AUTH_MODE} mode; $REGISTRY_BIN)
  registry-admin   http://localhost:${BIND_ADDR##*:}   (log: this terminal; audit: ${AUDIT_LOG_PATH})
  admin account    ${ADMIN_USERNAME:-admin} — its password is the one printed above when it was
                   created, or ADMIN_PASSWORD from your environment / .env
  try              curl -u ${ADMIN_USERNAME:-admin}:PASSWORD http://localhost:${BIND_ADDR##*:}/users
                   podman login --tls-verify=false localhost:5000

  Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
