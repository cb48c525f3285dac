#!/usr/bin/env bash
# Fuzzes the htpasswd parser and the name grammar for a bounded time each (default 60 s).
# Seeds live in fuzz/seeds/<target>; what libFuzzer finds goes to fuzz/corpus/<target> (ignored).
# cargo-fuzz wants nightly features; RUSTC_BOOTSTRAP lets this stable toolchain provide them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
for target in htpasswd names; do
  mkdir -p "corpus/$target"
  echo "fuzzing $target for ${seconds}s" >&2
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
