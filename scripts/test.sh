#!/usr/bin/env bash
# Runs every test: unit tests, and the integration tests that start a real registry:2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh docker-registry skopeo apache2-utils podman nginx
cargo test --locked "$@"
