//! Byte-exact rewrite of `$imagepolicy` setter markers in YAML files.
//!
//! This crate will hold the marker grammar, the comment-preserving rewrite on
//! `yaml-rust2` positions, the tree walk, and the serde result model.
