#!/usr/bin/env bash
# Starts the whole stack on this machine: registry:2 on :5000 and registry-admin on :5001,
# sharing ./auth/htpasswd. Runs in the foreground; Ctrl-C stops both.
# Settings come from the environment or from ./.env (see .env.example).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install a current Rust toolchain (rustup), then run this again" >&2
  exit 1
fi
scripts/install-deps.sh docker-registry curl
if [ -f .env ]; then
  set -a; . ./.env; set +a
fi

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
# registry:2 sends its events with this token; without one in .env, this run makes its own.
export EVENTS_TOKEN="${EVENTS_TOKEN:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

pids=()
stop() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# registry-admin first: it writes the htpasswd (admin + its service account) before registry:2
# reads it; a registry that starts without one provisions a user of its own.
target/release/registry-admin &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${BIND_ADDR##*:}/health/live" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "registry-admin failed to start" >&2; exit 1; }
  sleep 0.1
done

REGISTRY_AUTH_HTPASSWD_PATH="$HTPASSWD_PATH" \
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$root/data/registry" \
REGISTRY_NOTIFICATIONS_ENDPOINTS="[{name: registry-admin, url: 'http://127.0.0.1:${BIND_ADDR##*:}/events', headers: {Authorization: ['Bearer $EVENTS_TOKEN']}, timeout: 2s, threshold: 5, backoff: 1s}]" \
  /usr/bin/docker-registry serve registry/config.yml >logs/registry.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:5000/v2/" && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "registry:2 failed to start; see logs/registry.log" >&2; exit 1; }
  sleep 0.1
done

cat <<MSG

  registry:2       http://localhost:5000   (log: logs/registry.log)
  registry-admin   http://localhost:${BIND_ADDR##*:}   (log: this terminal; audit: ${AUDIT_LOG_PATH})
  admin account    ${ADMIN_USERNAME:-admin} — its password is the one printed above when it was
                   created, or ADMIN_PASSWORD from your environment / .env
  try              curl -u ${ADMIN_USERNAME:-admin}:PASSWORD http://localhost:${BIND_ADDR##*:}/users

  Ctrl-C stops both.
MSG
wait -n "${pids[@]}"
