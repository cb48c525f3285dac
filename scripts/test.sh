#!/usr/bin/env bash
# Runs every test: unit tests, the integration tests that start a real registry (htpasswd and
# token mode, with skopeo, podman, Apache htpasswd and nginx; cluster mode with PostgreSQL and
# moto's S3 as well), and the browser tests of the web UI.
# The registry tests run twice: against Debian's registry 2.8 (docker-registry), then against
# Distribution 3 (registry:3) — the binary at REGISTRY3_BIN, by default ../shared/registry3/registry
# beside this repository. Without that binary the second pass is skipped with a warning, except
# under CI=true, where it is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL, nginx and moto's S3 server for the cluster tests (tests/cluster/stack.rs), and Redis for
# the cache purge of tests/cluster/gc.rs, which skip with a warning when one is missing — and
# fail instead under CI=true.
scripts/install-deps.sh docker-registry skopeo apache2-utils podman nginx postgresql moto-server redis-server
cargo test --locked "$@"

# The test binaries that start a registry (tests/operations/packaging.rs checks this list
# against tests/).
registry_tests=(
  audit cluster gc grants images operations retention security tokens users
)
v3_bin="${REGISTRY3_BIN:-$PWD/../shared/registry3/registry}"
if [ -x "$v3_bin" ]; then
  echo "registry tests again, against Distribution 3: $v3_bin" >&2
  args=()
  for t in "${registry_tests[@]}"; do args+=(--test "$t"); done
  TEST_REGISTRY=v3 REGISTRY3_BIN="$v3_bin" cargo test --locked "${args[@]}" "$@"
elif [ "${CI:-}" = true ]; then
  echo "ERROR: no Distribution 3 binary at $v3_bin (set REGISTRY3_BIN); CI must test registry:3" >&2
  exit 1
else
  cat >&2 <<MSG

  ************************************************************************************
  WARNING: registry:3 tests SKIPPED — no Distribution 3 binary at $v3_bin.
  Only registry 2.8 was tested. Set REGISTRY3_BIN=/path/to/registry (v3) to run them.
  ************************************************************************************

MSG
fi

# The web UI in a real browser (Debian's chromium driven by Playwright) against the real stack.
scripts/ui-test.sh
