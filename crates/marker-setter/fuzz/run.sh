#!/usr/bin/env bash
# Fuzzes the setter with cargo-fuzz for a fixed budget of inputs (default 2,000,000, about
# 30 s here), from the seed files and the dictionary here, with a fixed random seed
# (FUZZ_SEED=0 picks a new one; libFuzzer's order still varies with the file system, so
# two runs are alike, not identical). The
# working corpus lives under target/. Stable Rust: the setter has no unsafe code, so
# libFuzzer runs without a sanitizer (ASan needs nightly).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-2000000}"
corpus="$(pwd)/../../target/fuzz-corpus/rewrite"
rm -rf "$corpus" && mkdir -p "$corpus"
cargo fuzz run rewrite --sanitizer none --target-dir ../../target/fuzz \
  "$corpus" fuzz/seeds -- \
  -dict=fuzz/rewrite.dict -runs="$runs" -seed="${FUZZ_SEED:-1}" -rss_limit_mb=2048 \
  -print_final_stats=1
