#!/usr/bin/env bash
# Installs the packages the stack and the tests use, if they are missing:
# docker-registry (registry:2), skopeo (pushes test images), apache2-utils (htpasswd),
# podman, and, when named, nginx (tests/operations/proxy.rs and tests/cluster/stack.rs put it in front),
# postgresql (tests/cluster/stack.rs starts its own server) and docker-compose (CI validates the
# compose files). With arguments, it installs exactly those; without, the stack's five.
# `moto-server` is not a Debian package: it is moto's S3 server from PyPI (`moto[server]`,
# the cluster tests' shared storage), installed with pipx into ~/.local/bin unless a
# `moto_server` is already on PATH or there.
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(docker-registry skopeo apache2-utils podman nginx)
missing=()
moto=false
for pkg in "${want[@]}"; do
  if [ "$pkg" = moto-server ]; then
    if ! command -v moto_server >/dev/null && [ ! -x "$HOME/.local/bin/moto_server" ]; then
      moto=true
      command -v pipx >/dev/null || missing+=(pipx)
    fi
    continue
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if $moto; then
  echo "installing: moto[server] (pipx, into ~/.local/bin)" >&2
  pipx install 'moto[server]' >/dev/null
fi
