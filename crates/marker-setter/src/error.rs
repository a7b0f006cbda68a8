//! The crate's one error type, and the non-fatal warnings a rewrite reports.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A failure that stops the setter: bad policy input, or a file it could not read or write.
/// Problems inside one file (broken YAML, a misplaced marker) are [`Warning`]s instead.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames, serde::Serialize)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SetterError {
    /// A policy's value is not an image reference.
    #[error("policy {policy}: {reference:?} is not a valid image reference: {reason}")]
    InvalidImageRef {
        /// The policy key, `namespace:name`.
        policy: String,
        /// The value given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A policy key that is not `namespace:name`.
    #[error("policy key {key:?} must be NAMESPACE:NAME")]
    InvalidPolicyKey {
        /// The key given.
        key: String,
    },
    /// An include/exclude glob that does not compile.
    #[error("glob {pattern:?}: {reason}")]
    InvalidGlob {
        /// The pattern given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The root to walk does not exist or is not a directory.
    #[error("{}: {reason}", path.display())]
    InvalidRoot {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be walked.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[serde(serialize_with = "display")]
        source: std::io::Error,
    },
    /// A file changed on disk between planning and writing (its content, or it is no longer
    /// a regular file); nothing was written to it.
    #[error("{}: changed on disk since it was read; not overwritten", path.display())]
    Conflict {
        /// The file.
        path: PathBuf,
    },
    /// A repository-relative path given as an absolute path.
    #[error("{path:?}: an absolute path; give a path relative to the repository root")]
    AbsolutePath {
        /// The path given (clipped).
        path: String,
    },
    /// A repository-relative path whose `..` components climb above the root.
    #[error("{path:?}: `..` leads outside the repository root")]
    PathEscapesRoot {
        /// The path given (clipped).
        path: String,
    },
    /// A symlink on the way to (or at) a path points outside the confinement root.
    #[error("{}: a symlink to {}, outside the repository root; not followed", path.display(), target.display())]
    SymlinkOutsideRoot {
        /// The symlink.
        path: PathBuf,
        /// What it points to, as written in the link.
        target: PathBuf,
    },
    /// A path (or a symlink's target) that does not exist.
    #[error("{}: {reason}", path.display())]
    PathNotFound {
        /// The path, or the dangling symlink.
        path: PathBuf,
        /// `does not exist`, or which target a dangling symlink names.
        reason: String,
    },
    /// The tree root given is itself a symlink; it is not followed.
    #[error("{}: a symlink to {}; give the folder itself, symlinks are not followed", path.display(), target.display())]
    SymlinkRoot {
        /// The symlink given as the root.
        path: PathBuf,
        /// What it points to, as written in the link.
        target: PathBuf,
    },
    /// YAML deeper or with more alias expansion than the limits allow
    /// ([`crate::MAX_YAML_DEPTH`], [`crate::MAX_YAML_ALIAS_EXPANSION`]).
    #[error("line {line}: {reason}")]
    YamlLimit {
        /// 1-based line where the limit was crossed.
        line: usize,
        /// Which limit.
        reason: String,
    },
    /// YAML that does not parse (from [`crate::read_yaml_events`]).
    #[error("line {line}: YAML does not parse: {reason}")]
    InvalidYaml {
        /// 1-based line of the error.
        line: usize,
        /// The parser's message.
        reason: String,
    },
    /// Writing a file failed and some files written before it could not be restored; the
    /// tree is half-applied. `source` is the first failure.
    #[error("{}: {source}; restoring the files written before it failed for: {}", path.display(), list_paths(unrestored))]
    RollbackFailed {
        /// The file whose write failed.
        path: PathBuf,
        /// Why it failed.
        source: Box<SetterError>,
        /// Files that keep the new content.
        unrestored: Vec<PathBuf>,
    },
}

/// Serialises a field by its text (an I/O error has no data form).
fn display<T: std::fmt::Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl SetterError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        // The variant's name in snake_case, derived once (strum).
        self.into()
    }

    /// Whether the error comes from the caller's input rather than the file system.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            SetterError::InvalidImageRef { .. }
                | SetterError::InvalidPolicyKey { .. }
                | SetterError::InvalidGlob { .. }
                | SetterError::InvalidRoot { .. }
                | SetterError::AbsolutePath { .. }
                | SetterError::PathEscapesRoot { .. }
                | SetterError::SymlinkOutsideRoot { .. }
                | SetterError::PathNotFound { .. }
                | SetterError::SymlinkRoot { .. }
                | SetterError::YamlLimit { .. }
                | SetterError::InvalidYaml { .. }
        )
    }
}

/// A problem in one file that leaves that file (or that marker) unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The file, relative to the root for tree runs.
    pub path: String,
    /// 1-based line, 0 when the problem is the whole file.
    pub line: usize,
    /// Stable kind: `parse_error`, `yaml_limit`, `not_utf8`, `unknown_policy`,
    /// `invalid_marker`, `missing_part`, `marker_on_key`, `marker_on_collection`,
    /// `marker_on_block_scalar`, `marker_on_alias`, `marker_unattached`, `multiline_scalar`,
    /// `symlink_outside_root`, `symlink_dangling`, `symlink_dir_skipped`,
    /// `symlink_not_written`, `special_file`, `file_too_large`, `unreadable`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}
