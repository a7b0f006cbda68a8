#![no_main]
//! `make fuzz` (fuzz/run.sh): arbitrary bytes through the setter; see `fuzz_rewrite`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tagsmith_marker_setter::fuzz_rewrite(data);
});
