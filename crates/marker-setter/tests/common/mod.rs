//! Setup the integration tests of this crate share: one marked line, its update, the
//! policy that makes it, and writing files into a tree. Each test file uses only some of it.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use tagsmith_marker_setter::{plan_tree, Policies, SetterError, TreeOptions, TreePlan};

/// A line marked for policy `ns:app`, at `app:1`.
pub const MARKED: &str = "image: app:1 # {\"$imagepolicy\": \"ns:app\"}\n";
/// [`MARKED`] once [`policies`] set it.
pub const UPDATED: &str = "image: app:2 # {\"$imagepolicy\": \"ns:app\"}\n";

/// `ns:app` chose `app:2`.
pub fn policies() -> Policies {
    Policies::from_map([("ns:app", "app:2")]).unwrap()
}

/// Writes `text` to `path`, creating its folders.
pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Plans [`policies`] on the tree at `root` with the default options.
pub fn plan_default(root: &Path) -> Result<TreePlan, SetterError> {
    plan_tree(root, &policies(), &TreeOptions::default())
}
