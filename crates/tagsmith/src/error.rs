//! Errors of the facade: [`RunError`] stops a whole run (bad configuration, an unreadable
//! file the user named, a clone that failed); [`ObjectError`] is why one Flux object could
//! not be used, reported in its place while everything that does not depend on it goes on,
//! as Flux's controllers fail one object and carry on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The longest error line tagsmith prints: remote and repository content (a 1 MB tag, a
/// registry's error page) is cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// `text` as one printable line of at most `max` characters: control characters (a
/// newline, an ANSI escape planted in repository content) are shown escaped, and a longer
/// text ends with `...`.
///
/// ```
/// use tagsmith::error::one_line;
/// assert_eq!(one_line("a\nb\u{1b}[31m", 100), "a\\nb\\u{1b}[31m");
/// assert_eq!(one_line(&"x".repeat(10), 4), "xxxx...");
/// ```
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 16));
    let mut count = 0;
    for c in text.chars() {
        let shown: Vec<char> = if c.is_control() {
            c.escape_default().collect()
        } else {
            vec![c]
        };
        if count + shown.len() > max {
            out.push_str("...");
            break;
        }
        count += shown.len();
        out.extend(shown);
    }
    out
}

/// Why one object (an ImageRepository, ImagePolicy, ImageUpdateAutomation, GitRepository,
/// Kustomization, or a file of them) could not be used: a stable `code` and one line that
/// names the file, the line and the field where they are known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    /// A stable code (`invalid_object`, `invalid_range`, `auth_failed`, `push_rejected`...).
    pub code: String,
    /// What is wrong, one line.
    pub message: String,
    /// The file, relative to the repository root, when the error is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The 1-based line in `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl ObjectError {
    /// An error with a code and a message (bounded to one line).
    pub fn new(code: &str, message: impl AsRef<str>) -> Self {
        ObjectError {
            code: code.to_string(),
            message: one_line(message.as_ref(), MAX_MESSAGE_CHARS),
            file: None,
            line: None,
        }
    }

    /// An error at `file:line` about `field`: the message reads `file:line: field: reason`.
    pub fn at(code: &str, file: &str, line: usize, field: &str, reason: impl AsRef<str>) -> Self {
        ObjectError {
            code: code.to_string(),
            message: one_line(
                &format!("{file}:{line}: {field}: {}", reason.as_ref()),
                MAX_MESSAGE_CHARS,
            ),
            file: Some(file.to_string()),
            line: Some(line),
        }
    }

    /// Any coded error of the crates, as its code and its message.
    pub fn from_coded(code: &str, error: &dyn fmt::Display) -> Self {
        Self::new(code, error.to_string())
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ObjectError {}

/// The codes of the object errors the pipeline reports itself (it passes on the crates'
/// codes as they are: `invalid_range`, `auth_failed`, `push_rejected`...). Each is defined
/// here once; [`error_kinds`] lists them with every crate's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum ObjectCode {
    /// A field is missing or invalid.
    InvalidObject,
    /// A file does not parse as YAML (or is not UTF-8); its objects are not read.
    InvalidYaml,
    /// A kind that `image.toolkit.fluxcd.io` does not have (a typo).
    UnknownKind,
    /// An API version tagsmith does not read.
    UnsupportedApiVersion,
    /// A name still holding a `${var}` no Kustomization substitutes.
    UnresolvedVariable,
    /// Two different definitions of one kind/namespace/name.
    DuplicateObject,
    /// A reference to an object that is not among those read.
    MissingReference,
    /// `accessFrom` does not allow the reference.
    AccessDenied,
    /// An object this one depends on failed.
    DependencyFailed,
    /// Suspended, and without the earlier state Flux would keep.
    Suspended,
    /// A secret the object names is unusable.
    Secret,
    /// The registry failed; an older scan was used.
    Stale,
    /// A file of the checkout could not be read.
    Io,
    /// Opening, updating or closing the pull request failed.
    PullRequest,
}

impl ObjectCode {
    /// The code's text.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One error code and the family it belongs to (the crate, or `object` for the pipeline's
/// own): what the bindings' exception classes and error codes are derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ErrorKind {
    /// `policy`, `setter`, `scan`, `git`, `forge`, `run` or `object`.
    pub family: &'static str,
    /// The code.
    pub code: &'static str,
}

/// Every error code tagsmith reports, by family, derived from the error enums themselves
/// (a new variant is here without anyone listing it).
pub fn error_kinds() -> Vec<ErrorKind> {
    use strum::VariantNames;
    // Variants that wrap another crate's error carry that error's code, not their own.
    let delegating = ["policy", "scan", "git"];
    let families: [(&'static str, &'static [&'static str]); 7] = [
        ("policy", tagsmith_image_policy_core::PolicyError::VARIANTS),
        ("setter", tagsmith_marker_setter::SetterError::VARIANTS),
        ("scan", tagsmith_registry_scan::ScanError::VARIANTS),
        ("git", tagsmith_git_commit::GitError::VARIANTS),
        ("forge", tagsmith_forge::ForgeError::VARIANTS),
        ("run", RunError::VARIANTS),
        ("object", ObjectCode::VARIANTS),
    ];
    families
        .iter()
        .flat_map(|(family, codes)| {
            codes
                .iter()
                .filter(move |code| *family == "object" || !delegating.contains(code))
                .map(move |code| ErrorKind { family, code })
        })
        .collect()
}

/// Why a whole run could not go on. Problems with one object are [`ObjectError`]s in the
/// report instead, so that the others still run.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames, serde::Serialize)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum RunError {
    /// The configuration given is unusable (options that do not go together, a root that
    /// is not a folder).
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// A file the user named (config file, known_hosts) cannot be read.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The git credentials given do not make a usable set (an SSH key without known hosts, a
    /// username without a password).
    #[error("git credentials: {message}")]
    Credentials {
        /// What is missing.
        message: String,
    },
    /// Registry configuration (snapshot, CA bundle, Docker config) is unusable.
    #[error(transparent)]
    #[serde(skip)] // carries its own code
    Scan(#[from] tagsmith_registry_scan::ScanError),
    /// Cloning or reading the Git repository failed.
    #[error(transparent)]
    #[serde(skip)] // carries its own code
    Git(#[from] tagsmith_git_commit::GitError),
}

impl RunError {
    /// A stable kind for programs, bindings and exit codes: the variant's name in
    /// snake_case, or the wrapped error's code.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::Scan(e) => e.code(),
            RunError::Git(e) => e.code(),
            other => other.into(),
        }
    }

    /// The family of [`code`](Self::code) in [`error_kinds`].
    pub fn family(&self) -> &'static str {
        match self {
            RunError::Scan(_) => "scan",
            RunError::Git(_) => "git",
            _ => "run",
        }
    }

    /// Whether the user's input (configuration, a named file) is at fault: exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            RunError::Config { .. } | RunError::Io { .. } | RunError::Credentials { .. } => true,
            RunError::Scan(e) => matches!(e, tagsmith_registry_scan::ScanError::Config { .. }),
            RunError::Git(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_lists_its_codes_and_wrappers_carry_none_of_their_own() {
        let kinds = error_kinds();
        let has = |family: &str, code: &str| {
            kinds.contains(&ErrorKind {
                family: Box::leak(family.to_string().into_boxed_str()),
                code: Box::leak(code.to_string().into_boxed_str()),
            })
        };
        assert!(has("policy", "no_match"));
        assert!(has("scan", "scan_timeout"));
        assert!(has("setter", "symlink_outside_root"));
        assert!(has("git", "foreign_commit"));
        assert!(has("forge", "rate_limited"));
        assert!(has("run", "credentials"));
        assert!(has("object", "duplicate_object"));
        assert!(!has("scan", "policy") && !has("run", "scan") && !has("run", "git"));
        // Codes are what the errors report.
        let e = tagsmith_registry_scan::ScanError::Policy(
            tagsmith_image_policy_core::PolicyError::EmptyTags,
        );
        assert_eq!(e.code(), "empty_tags");
        assert_eq!(
            RunError::Config {
                message: String::new()
            }
            .code(),
            "config"
        );
    }

    #[test]
    fn object_errors_are_one_bounded_line() {
        let e = ObjectError::at(
            "invalid_object",
            "a.yaml",
            3,
            "spec.image",
            "x\n".repeat(1000),
        );
        assert!(!e.message.contains('\n'));
        assert!(e.message.chars().count() <= MAX_MESSAGE_CHARS + 3);
        assert!(
            e.message.starts_with("a.yaml:3: spec.image: x\\n"),
            "{}",
            e.message
        );
        assert_eq!((e.file.as_deref(), e.line), (Some("a.yaml"), Some(3)));
    }

    #[test]
    fn one_line_cuts_on_character_boundaries() {
        assert_eq!(one_line("ééé", 2), "éé...");
        assert_eq!(one_line("", 2), "");
    }
}
