//! tagsmith: GitOps image automation as a library.
//!
//! The facade re-exports the core crates and holds the run pipeline:
//! scan ([`registry`]) -> select ([`policy`]) -> set ([`setter`]) -> commit/push ([`git`]),
//! driven by Flux's own CRDs ([`crd`]), with git credentials from arguments or the
//! environment ([`credentials`]). The CLI and both language bindings depend on this crate
//! alone.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("flux.yaml"), r#"
//! apiVersion: image.toolkit.fluxcd.io/v1
//! kind: ImageRepository
//! metadata: {name: app, namespace: flux-system}
//! spec: {image: reg.example.com/app, interval: 5m}
//! ---
//! apiVersion: image.toolkit.fluxcd.io/v1
//! kind: ImagePolicy
//! metadata: {name: app, namespace: flux-system}
//! spec:
//!   imageRepositoryRef: {name: app}
//!   policy: {semver: {range: ">=1.0.0 <2.0.0"}}
//! ---
//! apiVersion: image.toolkit.fluxcd.io/v1
//! kind: ImageUpdateAutomation
//! metadata: {name: apps, namespace: flux-system}
//! spec:
//!   git: {commit: {author: {name: bot, email: bot@example.com}}}
//!   update: {path: ./, strategy: Setters}
//! "#)?;
//! std::fs::write(dir.path().join("app.yaml"),
//!     "image: reg.example.com/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n")?;
//! std::fs::write(dir.path().join("tags.yaml"), "reg.example.com/app: [1.0.0, 1.4.2, 2.0.0]\n")?;
//!
//! let mut opts = tagsmith::run::RunOptions::new(dir.path());
//! opts.snapshot = Some(dir.path().join("tags.yaml"));
//! opts.dry_run = true;
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let report = rt.block_on(tagsmith::run::run(&opts))?;
//! assert_eq!(report.policies[0].latest_tag.as_deref(), Some("1.4.2"));
//! assert!(report.automations[0].diff.as_ref().unwrap().contains("+image: reg.example.com/app:1.4.2"));
//! # Ok(()) }
//! ```

pub mod check;
pub mod crd;
pub mod credentials;
pub mod run;
mod yaml;

pub use tagsmith_git_commit as git;
pub use tagsmith_image_policy_core as policy;
pub use tagsmith_marker_setter as setter;
pub use tagsmith_registry_scan as registry;

use std::path::PathBuf;

/// Why a run failed. Problems with one policy or one registry are reported in the
/// [`run::RunReport`] instead, so that the others still run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A Flux object is invalid: `file:line: field: message`.
    #[error("{}:{line}: {field}: {message}", file.display())]
    InvalidObject {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The field path (`spec.policy.semver.range`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A file given by the user (config file, secret) cannot be read.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// Registry configuration (snapshot, CA bundle, Docker config) is unusable.
    #[error(transparent)]
    Scan(#[from] tagsmith_registry_scan::ScanError),
    /// The setter failed (I/O, conflicting write, invalid policy image).
    #[error("setter: {0}")]
    Setter(String),
    /// Commit or push failed.
    #[error(transparent)]
    Git(#[from] tagsmith_git_commit::GitError),
    /// The git credentials given do not make a usable set (an SSH key without known
    /// hosts, a username without a password).
    #[error("git credentials: {message}")]
    Credentials {
        /// What is missing.
        message: String,
    },
}

impl From<tagsmith_marker_setter::SetterError> for RunError {
    fn from(e: tagsmith_marker_setter::SetterError) -> Self {
        RunError::Setter(e.to_string())
    }
}

impl RunError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::InvalidObject { .. } => "invalid_object",
            RunError::Io { .. } => "io",
            RunError::Scan(e) => e.code(),
            RunError::Setter(_) => "setter",
            RunError::Git(e) => e.code(),
            RunError::Credentials { .. } => "credentials",
        }
    }

    /// Whether the user's input is at fault (exit code 2).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            RunError::InvalidObject { .. } | RunError::Io { .. } | RunError::Credentials { .. }
        ) || matches!(
            self,
            RunError::Git(tagsmith_git_commit::GitError::Template { .. })
        ) || matches!(
            self,
            RunError::Scan(tagsmith_registry_scan::ScanError::Config { .. })
        )
    }
}
