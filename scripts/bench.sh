#!/usr/bin/env bash
# Runs every benchmark of the project in one go (users, images against a local registry:2,
# audit on a generated 1M-entry log, cluster audit appends from two replicas into PostgreSQL against
# the files, token mode against htpasswd mode, GC; token and GC also on
# registry 3; robot secrets against passwords at /token, retention plan evaluation over 2,000 x 50
# tags and a 1M-entry log, cluster mode on PostgreSQL against files mode, the web UI) and prints one table: each figure, its reference measured
# in the same run, the ratio, and the target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh docker-registry skopeo postgresql
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for bench in users images audit token gc robots retention cluster cluster_audit; do
  echo "running benchmark: $bench" >&2
  cargo bench --locked --bench "$bench" 2>/dev/null | tee -a "$out" >&2
done
# The two that compare against the registry itself, again on Distribution 3 (see scripts/test.sh
# for where its binary comes from).
v3_bin="${REGISTRY3_BIN:-$PWD/../shared/registry3/registry}"
if [ -x "$v3_bin" ]; then
  for bench in token gc; do
    echo "running benchmark: $bench on registry 3 ($v3_bin)" >&2
    TEST_REGISTRY=v3 REGISTRY3_BIN="$v3_bin" cargo bench --locked --bench "$bench" 2>/dev/null \
      | sed '/^| figure /!s/^| /| registry 3: /' | tee -a "$out" >&2
  done
else
  echo "WARNING: no Distribution 3 binary at $v3_bin: token and gc benchmarks ran on registry 2.8 only" >&2
fi
echo "running benchmark: ui (2,000 repositories in headless chromium)" >&2
scripts/ui-test.sh bench 2>/dev/null | tee -a "$out" >&2
echo
echo "| figure | value | reference | ratio | target |"
echo "|---|---|---|---|---|"
grep '^| ' "$out" | grep -v '^| figure ' | grep -v '^|---'
