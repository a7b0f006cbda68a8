#!/usr/bin/env bash
# Fuzzes reading Flux objects from repository content (YAML, CRDs, kustomize rules,
# substitution, check) with cargo-fuzz for a fixed budget of inputs (default 100,000, about 80 s here) from
# the seeds here, with a fixed random seed (FUZZ_SEED=0 picks a new one). Stable Rust,
# libFuzzer without a sanitizer, as the setter's target.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-100000}"
corpus="$(pwd)/../../target/fuzz-corpus/objects"
rm -rf "$corpus" && mkdir -p "$corpus"
cargo fuzz run objects --sanitizer none --target-dir ../../target/fuzz \
  "$corpus" fuzz/seeds -- \
  -runs="$runs" -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1
