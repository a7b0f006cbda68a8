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
mod limits;
mod reference;
mod rewrite;
mod safe_fs;
mod scalar;
mod text;
mod tree;
mod walk;

pub use error::{SetterError, Warning};
pub use limits::{check_yaml_limits, read_yaml_events, MAX_YAML_ALIAS_EXPANSION, MAX_YAML_DEPTH};
pub use reference::{ImageRef, Policies};
pub use rewrite::{
    rewrite_str, Change, FileOutcome, MarkerKind, ObjectChanges, ObjectRef, MARKER_KEY,
};
pub use safe_fs::resolve_inside;
pub use tree::{
    apply_tree, plan_tree, FileChanges, SetterResult, TreeOptions, TreePlan, DEFAULT_MAX_FILE_SIZE,
};
pub use walk::{walk_yaml_files, YamlFile, YamlFiles};

/// The lines of `text` as YAML breaks them, without their breaks: at `\n`, `\r\n` and a
/// lone `\r`. yaml-rust2 counts lines the same way, so the 1-based `line` of a change or a
/// warning indexes this list (`str::lines` would not: it keeps a lone `\r` inside a line).
///
/// ```
/// assert_eq!(tagsmith_marker_setter::yaml_lines("a\rb\r\nc\n"), ["a", "b", "c", ""]);
/// ```
pub fn yaml_lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if matches!(bytes[i], b'\n' | b'\r') {
            lines.push(&text[start..i]);
            if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    lines.push(&text[start..]);
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
    // Rewritten content is UTF-8, as the input must have been.
    let (Ok(old_text), Ok(new_text)) = (std::str::from_utf8(data), std::str::from_utf8(&new))
    else {
        panic!("a rewrite of content that is not UTF-8");
    };
    let (old_lines, new_lines) = (yaml_lines(old_text), yaml_lines(new_text));
    assert_eq!(old_lines.len(), new_lines.len(), "lines added or removed");
    for (i, (old, new)) in old_lines.iter().zip(&new_lines).enumerate() {
        assert!(
            old == new || changed.contains(&(i + 1)),
            "line {} changed without a recorded change",
            i + 1
        );
    }
}
