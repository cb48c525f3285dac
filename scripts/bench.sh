#!/usr/bin/env bash
# Runs every benchmark of the project in one go (users, images against a local registry:2,
# audit on a generated 1M-entry log, token mode against htpasswd mode, robot secrets against
# passwords at /token, retention plan evaluation over 2,000 x 50 tags and a 1M-entry log, the web
# UI) and prints one table: each figure, its reference measured in the same run, the ratio, and
# the target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh docker-registry skopeo
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for bench in users images audit token gc robots retention; do
  echo "running benchmark: $bench" >&2
  cargo bench --locked --bench "$bench" 2>/dev/null | tee -a "$out" >&2
done
echo "running benchmark: ui (2,000 repositories in headless chromium)" >&2
scripts/ui-test.sh bench 2>/dev/null | tee -a "$out" >&2
echo
echo "| figure | value | reference | ratio | target |"
echo "|---|---|---|---|---|"
grep '^| ' "$out" | grep -v '^| figure ' | grep -v '^|---'
