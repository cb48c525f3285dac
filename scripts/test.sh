#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests that start a real registry:2 (htpasswd and
# token mode, with skopeo, podman, Apache htpasswd and nginx), and the browser tests of the web UI.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh docker-registry skopeo apache2-utils podman nginx
cargo test --locked "$@"
# The web UI in a real browser (Debian's chromium driven by Playwright) against the real stack.
scripts/ui-test.sh
