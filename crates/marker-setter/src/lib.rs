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

/// Lines as YAML breaks them (`\n`, `\r\n`, a lone `\r`), without their breaks.
fn yaml_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < data.len() {
        if matches!(data[i], b'\n' | b'\r') {
            lines.push(&data[start..i]);
            if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    lines.push(&data[start..]);
    lines
}

/// The body of the `cargo fuzz` target (`fuzz/fuzz_targets/rewrite.rs`), also driven by
/// proptest on stable in `tests/byte_identity.rs`: no input may panic; content that changed
/// must come with a recorded change; and the output keeps every line of the input that
/// carries no recorded change byte for byte.
#[doc(hidden)]
pub fn fuzz_rewrite(data: &[u8]) {
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let Ok(policies) = Policies::from_map([
        ("ns:app", format!("reg.example.com/team/app:1.0.0@{digest}")),
        ("ns:web", "web:2.0.0".to_string()),
    ]) else {
        return;
    };
    let out = rewrite_str(data, std::path::Path::new("fuzz.yaml"), &policies);
    let Some(new) = out.new_content else {
        return;
    };
    assert!(
        !out.objects.is_empty(),
        "content changed without a recorded change"
    );
    assert_ne!(new.as_slice(), data, "new content equals the old");
    let changed: std::collections::HashSet<usize> = out
        .objects
        .iter()
        .flat_map(|o| o.changes.iter().map(|c| c.line))
        .collect();
    let (old_lines, new_lines) = (yaml_lines(data), yaml_lines(&new));
    assert_eq!(old_lines.len(), new_lines.len(), "lines added or removed");
    for (i, (old, new)) in old_lines.iter().zip(&new_lines).enumerate() {
        assert!(
            old == new || changed.contains(&(i + 1)),
            "line {} changed without a recorded change",
            i + 1
        );
    }
}
