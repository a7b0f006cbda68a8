//! Flux-compatible image tag selection (`ImagePolicy`), with no I/O.
//!
//! This crate will hold the `semver` policy (Masterminds v3 constraint grammar),
//! the `alphabetical` and `numerical` policies, `filterTags` (`pattern` + `extract`),
//! the exclusion list, and an explanation of every choice.
