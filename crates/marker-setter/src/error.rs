//! The crate's one error type, and the non-fatal warnings a rewrite reports.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A failure that stops the setter: bad policy input, or a file it could not read or write.
/// Problems inside one file (broken YAML, a misplaced marker) are [`Warning`]s instead.
#[derive(Debug, thiserror::Error)]
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
        source: std::io::Error,
    },
    /// A file changed on disk between planning and writing; nothing was written to it.
    #[error("{}: changed on disk since it was read; not overwritten", path.display())]
    Conflict {
        /// The file.
        path: PathBuf,
    },
}

impl SetterError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            SetterError::InvalidImageRef { .. } => "invalid_image_ref",
            SetterError::InvalidPolicyKey { .. } => "invalid_policy_key",
            SetterError::InvalidGlob { .. } => "invalid_glob",
            SetterError::InvalidRoot { .. } => "invalid_root",
            SetterError::Io { .. } => "io",
            SetterError::Conflict { .. } => "conflict",
        }
    }

    /// Whether the error comes from the caller's input rather than the file system.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            SetterError::InvalidImageRef { .. }
                | SetterError::InvalidPolicyKey { .. }
                | SetterError::InvalidGlob { .. }
                | SetterError::InvalidRoot { .. }
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
    /// Stable kind: `parse_error`, `not_utf8`, `unknown_policy`, `marker_on_key`,
    /// `marker_on_collection`, `marker_on_block_scalar`, `marker_on_alias`,
    /// `marker_unattached`, `multiline_scalar`, `symlink_outside_root`, `unreadable`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}
