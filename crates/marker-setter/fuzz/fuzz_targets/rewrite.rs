#![no_main]
//! `cargo +nightly fuzz run rewrite`: arbitrary bytes through the setter.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tagsmith_marker_setter::fuzz_rewrite(data);
});
