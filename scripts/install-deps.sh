#!/usr/bin/env bash
# Installs the Debian packages the stack and the tests use, if they are missing:
# docker-registry (registry:2), skopeo (pushes test images), apache2-utils (htpasswd),
# and, when named, nginx (tests/proxy.rs runs the reverse-proxy example). With arguments, it
# installs exactly those packages; without, the stack's three.
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(docker-registry skopeo apache2-utils podman nginx)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
