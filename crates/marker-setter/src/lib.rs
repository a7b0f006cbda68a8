//! Byte-exact rewrite of Flux `$imagepolicy` setter markers in YAML.
//!
//! Flux's ImageUpdateAutomation (Setters strategy) rewrites values marked with a comment
//! such as `# {"$imagepolicy": "flux-system:app"}` (also `:tag`, `:name`, `:digest`), but
//! round-trips the whole file through a YAML encoder. This crate changes the marked scalar's
//! bytes and nothing else: comments, indentation, quoting, CRLF, BOM, blank lines and
//! document markers stay as they were.
//!
//! ```
//! use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("app.yaml"),
//!     "image: reg.example.com/team/app:1.2.3 # {\"$imagepolicy\": \"flux-system:app\"}\n",
//! )?;
//! let policies = Policies::from_map([("flux-system:app", "reg.example.com/team/app:1.4.2")])?;
//! let plan = plan_tree(dir.path(), &policies, &TreeOptions::default())?;
//! assert!(plan.unified_diff().contains("+image: reg.example.com/team/app:1.4.2"));
//! plan.write()?;
//! let change = &plan.result().files[0].objects[0].changes[0];
//! assert_eq!((change.old_value.as_str(), change.line), ("reg.example.com/team/app:1.2.3", 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod reference;
mod rewrite;
mod scalar;
mod tree;

pub use error::{SetterError, Warning};
pub use reference::{ImageRef, Policies};
pub use rewrite::{
    rewrite_str, Change, FileOutcome, MarkerKind, ObjectChanges, ObjectRef, MARKER_KEY,
};
pub use tree::{apply_tree, plan_tree, FileChanges, SetterResult, TreeOptions, TreePlan};

/// The body of the `cargo fuzz` target (`fuzz/fuzz_targets/rewrite.rs`), also driven by
/// proptest on stable in `tests/byte_identity.rs`: no input may panic, and content that
/// changed must come with a recorded change.
#[doc(hidden)]
pub fn fuzz_rewrite(data: &[u8]) {
    let Ok(policies) = Policies::from_map([("ns:app", "reg.example.com/team/app:1.0.0")]) else {
        return;
    };
    let out = rewrite_str(data, std::path::Path::new("fuzz.yaml"), &policies);
    if let Some(new) = out.new_content {
        assert!(
            !out.objects.is_empty(),
            "content changed without a recorded change"
        );
        assert_ne!(new.as_slice(), data, "new content equals the old");
    }
}
