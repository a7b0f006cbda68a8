#!/usr/bin/env bash
# Fuzzes the setter with cargo-fuzz for a fixed budget (seconds, default 60), from the seed
# files and the dictionary here; the working corpus lives under target/. Stable Rust: the
# setter has no unsafe code, so libFuzzer runs without a sanitizer (ASan needs nightly).
set -euo pipefail
cd "$(dirname "$0")/.."
budget="${1:-60}"
corpus="$(pwd)/../../target/fuzz-corpus/rewrite"
mkdir -p "$corpus"
cargo fuzz run rewrite --sanitizer none --target-dir ../../target/fuzz \
  "$corpus" fuzz/seeds -- \
  -dict=fuzz/rewrite.dict -max_total_time="$budget" -rss_limit_mb=2048 -print_final_stats=1
