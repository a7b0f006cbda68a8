//! The git side of `ImageUpdateAutomation`: one clean commit of the setter's changes, a
//! message from a Flux-compatible Go template, and a push that survives a teammate pushing
//! at the same moment (fetch, re-apply on the new tip, retry). The user's own work is
//! never lost or published: a push branch other than the checked-out one is built in a
//! temporary repository from the remote's base tip, and only the automation's commit is
//! ever pushed (a separate push branch is rebuilt with a lease, never over others'
//! commits).
//!
//! ```
//! use std::path::PathBuf;
//! use tagsmith_git_commit::{commit_and_push, ApplyOutcome, CommitOptions, PushOutcome, PushTarget, Repository, Signature};
//! # fn git(dir: &std::path::Path, args: &[&str]) { assert!(std::process::Command::new("git").args(args).current_dir(dir).status().unwrap().success()); }
//! let tmp = tempfile::tempdir()?;
//! let (remote, work) = (tmp.path().join("remote.git"), tmp.path().join("work"));
//! git(tmp.path(), &["init", "-q", "--bare", "-b", "main", remote.to_str().unwrap()]);
//! git(tmp.path(), &["clone", "-q", remote.to_str().unwrap(), work.to_str().unwrap()]);
//! git(&work, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
//! git(&work, &["push", "-q", "origin", "HEAD:main"]);
//!
//! let repo = Repository::open(&work)?;
//! let who = CommitOptions { author: Signature { name: "bot".into(), email: "bot@example.com".into() }, committer: None };
//! let outcome = commit_and_push(&repo, &who, &PushTarget::default(), "origin", 3, &mut |dir| {
//!     std::fs::write(dir.join("app.yaml"), "image: app:1.1.0\n")?;
//!     Ok(ApplyOutcome { changed_files: vec![PathBuf::from("app.yaml")], message: "Update app".into() })
//! })?;
//! assert!(matches!(outcome, PushOutcome::Pushed { attempts: 1, .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod push;
mod repo;
mod sign;
pub mod sprig;
mod template;
mod transport;

pub use auth::{GitAuth, KeySource, Secret};
pub use push::{commit_and_push, ApplyError, ApplyOutcome, BranchState, PushOutcome, PushTarget};
pub use repo::{
    highest_tag_in_range, CheckoutRef, CloneOptions, CommitOptions, Repository, Signature,
};
pub use sign::SigningKey;
pub use template::{
    uses_updated, ChangeRecord, MessageTemplate, ObjectIdentifier, TemplateData,
    DEFAULT_MESSAGE_TEMPLATE, MAX_MESSAGE_BYTES, MAX_RANGE_ITERATIONS, MAX_TEMPLATE_BYTES,
};

/// Why a commit or push failed.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames, serde::Serialize)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum GitError {
    /// The message template does not parse or render (the message names the position).
    #[error("commit message template: {message}")]
    Template {
        /// gotmpl's message, with line and column for syntax errors.
        message: String,
    },
    /// A git operation failed.
    #[error("git: {context}: {message}")]
    Git {
        /// What was being done.
        context: String,
        /// libgit2's message.
        message: String,
    },
    /// Applying the change (the setter) failed.
    #[error("applying the change failed: {message}")]
    Apply {
        /// The setter's error.
        message: String,
    },
    /// The remote refused a push for another reason than a race (a hook, a protected
    /// branch, permissions); never retried, and the local commit is undone.
    #[error("the remote rejected the push to {target}: {message}")]
    PushRejected {
        /// The branch or refspec.
        target: String,
        /// The remote's status and the lines its hooks printed (bounded; URLs and
        /// credentials redacted).
        message: String,
    },
    /// The remote push branch holds a commit the automation did not make: rebuilding the
    /// branch would throw it away.
    #[error("the remote branch {branch} holds commit {commit} by {author}, which the automation did not make; refusing to overwrite it (merge or delete that branch, or push elsewhere)")]
    ForeignCommit {
        /// The push branch.
        branch: String,
        /// The first such commit found.
        commit: String,
        /// Its author, `Name <email>`.
        author: String,
    },
    /// `git.push.refspec` would push something else than the update commit, or force.
    #[error("push refspec {refspec:?} refused: {message}")]
    Refspec {
        /// The refspec as written.
        refspec: String,
        /// Why.
        message: String,
    },
    /// The checkout holds work that a commit and push could publish or lose: uncommitted
    /// changes to tracked files, or local commits the remote branch does not have.
    #[error("the work tree is not safe to update: {reason}")]
    WorkTree {
        /// What was found, naming files or the branch.
        reason: String,
    },
    /// Others kept pushing first; gave up (nothing was overwritten).
    #[error("branch {branch} kept moving: push rejected {attempts} times; nothing was forced")]
    PushRaceExhausted {
        /// The branch.
        branch: String,
        /// Attempts made.
        attempts: u32,
    },
}

impl GitError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        // The variant's name in snake_case, derived once (strum).
        self.into()
    }
}
