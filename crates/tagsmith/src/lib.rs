//! tagsmith: GitOps image automation as a library.
//!
//! The facade re-exports the core crates and holds the run pipeline:
//! scan ([`registry`]) -> select ([`policy`]) -> set ([`setter`]) -> commit/push ([`git`]).
//! The CLI and both language bindings depend on this crate alone.

pub use tagsmith_git_commit as git;
pub use tagsmith_image_policy_core as policy;
pub use tagsmith_marker_setter as setter;
pub use tagsmith_registry_scan as registry;
