//! Cross-crate scenarios live in this package's `tests/` folder; the library is empty.
