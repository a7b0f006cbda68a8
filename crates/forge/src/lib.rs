//! Opening, updating and closing the pull request for tagsmith's push branch.
//!
//! When an automation pushes its commits to a branch of its own (Flux's
//! `spec.git.push.branch`), a person reviews them in a pull request from that branch to the
//! checked-out one. [`ensure_pull_request`] opens it, or brings the open one up to date
//! (title, description, labels), so a rerun never opens a second one: the open pull request
//! is found by its head and base branch. [`close_pull_request_if_open`] closes it with a
//! comment once the branch no longer differs from its base. A pull request someone else
//! opened for the same branches (its author is not the token's user) is left alone.
//!
//! The [`Forge`] trait holds the few calls this needs; [`GiteaForge`] (API v1),
//! [`GitHubForge`] (REST v3) and [`GitLabForge`] (REST v4, merge requests) implement it, and
//! [`connect`] picks one from a [`ForgeConfig`]. The repository is a [`RepoId`] parsed from
//! the automation's git remote; [`ForgeKind::detect`] names the forge from the host where
//! the host alone says it (github.com, gitlab.com). [`render_body`] writes the description
//! from plain values. Errors are one [`ForgeError`] with a stable [`ForgeError::code`];
//! each message is one line naming the forge, the repository and the branches, and the
//! token ([`Secret`]) prints `<redacted>`.
//!
//! ```
//! use tagsmith_forge::{ForgeKind, RepoId};
//!
//! let repo = RepoId::from_remote("git@gitlab.com:acme/platform/fleet.git")?;
//! assert_eq!(repo.path(), "acme/platform/fleet"); // groups and subgroups kept
//! assert_eq!(repo.detect_forge(), Some(ForgeKind::GitLab));
//!
//! let repo: RepoId = "https://bot:secret@git.example.com/team/app.git".parse()?;
//! assert_eq!(repo.to_string(), "git.example.com/team/app"); // credentials dropped
//! assert_eq!(repo.detect_forge(), None); // a self-hosted forge: the caller says which
//! # Ok::<(), tagsmith_forge::ForgeError>(())
//! ```
//!
//! A run that pushed to its branch then makes sure the pull request says what it pushed
//! (this one needs a forge, so it is only compiled):
//!
//! ```no_run
//! use tagsmith_forge::{connect, ensure_pull_request, ForgeConfig, ForgeKind, PrOutcome};
//! use tagsmith_forge::{PullRequestSpec, RepoId, Secret};
//! # async fn run() -> Result<(), tagsmith_forge::ForgeError> {
//! let repo = RepoId::from_remote("https://gitea.example.com/team/fleet.git")?;
//! let kind = repo.detect_forge().unwrap_or(ForgeKind::Gitea); // else --forge
//! let token = Secret::new(std::env::var("TAGSMITH_FORGE_TOKEN").unwrap_or_default());
//! let forge = connect(&ForgeConfig::new(kind, token).with_api_url("https://gitea.example.com"))?;
//! let spec = PullRequestSpec {
//!     repo,
//!     head: "tagsmith/image-updates".into(),
//!     base: "main".into(),
//!     title: "Update images".into(),
//!     body: "...".into(),
//!     labels: vec!["automated".into()],
//!     reviewers: vec![],
//! };
//! match ensure_pull_request(&*forge, &spec).await? {
//!     PrOutcome::Opened { url, .. } => println!("opened {url}"),
//!     other => println!("{} is open ({other:?})", other.url()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Why hand-written calls on `reqwest` rather than client crates: the bot needs seven
//! calls on each of three forges (about ten endpoints in all). `octocrab` (GitHub) and
//! `gitlab` (GitLab) are maintained, but each covers one forge with its own HTTP stack,
//! types and error type, and we found none as well kept for Gitea; on top of three such crates
//! this one would still hold the trait, the one error enum with its codes, the rate-limit
//! reading and the bounded reads, which is most of its code. `reqwest` is already in the
//! build through oci-client, with the same rustls features, so the three forges share one
//! small HTTP layer (timeouts, bounded bodies, one status mapping) at no new dependency.
//!
//! Tested: Gitea end to end against a real Gitea 1.26 on loopback (`make setup-tools`
//! builds it); GitHub and GitLab only against their documented request and answer shapes on
//! a scripted loopback server, since neither can be reached from the test machines.

mod body;
mod config;
mod error;
mod gitea;
mod github;
mod github_like;
mod gitlab;
mod http;
mod pr;
mod repo;

pub use body::{render_body, BodyChange, BodyPolicy, PrBody, MAX_BODY_CHARS};
pub use config::{ForgeConfig, ForgeKind, Secret};
pub use error::{ErrorContext, ForgeError};
pub use gitea::GiteaForge;
pub use github::GitHubForge;
pub use gitlab::GitLabForge;
pub use pr::{
    close_pull_request_if_open, ensure_pull_request, CloseOutcome, NewPullRequest, PrField,
    PrOutcome, PrState, PullRequest, PullRequestSpec, PullRequestUpdate,
};
pub use repo::RepoId;

use async_trait::async_trait;

/// The calls tagsmith makes on a forge. Every call names the repository; the branch names
/// are plain (`main`, not `refs/heads/main`).
#[async_trait]
pub trait Forge: Send + Sync {
    /// Which forge this is.
    fn kind(&self) -> ForgeKind;

    /// The user the token acts as (asked once, then remembered); `None` when the forge
    /// cannot say (a GitHub App token). `repo` only names the repository in errors.
    async fn current_user(&self, repo: &RepoId) -> Result<Option<String>, ForgeError>;

    /// The open pull request from `head` to `base`, both branches of `repo` (one from a
    /// fork's branch of the same name does not count).
    async fn find_open_pull_request(
        &self,
        repo: &RepoId,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, ForgeError>;

    /// Opens a pull request with its labels and reviewers.
    async fn open_pull_request(
        &self,
        repo: &RepoId,
        new: &NewPullRequest,
    ) -> Result<PullRequest, ForgeError>;

    /// Changes the title and/or description of `pr`.
    async fn update_pull_request(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ForgeError>;

    /// Adds labels to `pr`, keeping the ones it has.
    async fn add_labels(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        labels: &[String],
    ) -> Result<(), ForgeError>;

    /// Comments on `pr`.
    async fn comment(&self, repo: &RepoId, pr: &PullRequest, body: &str) -> Result<(), ForgeError>;

    /// Closes `pr` without merging, after commenting `comment` if given.
    async fn close_pull_request(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        comment: Option<&str>,
    ) -> Result<PullRequest, ForgeError>;
}

/// The client for `config.kind`.
pub fn connect(config: &ForgeConfig) -> Result<Box<dyn Forge>, ForgeError> {
    Ok(match config.kind {
        ForgeKind::Gitea => Box::new(GiteaForge::new(config)?),
        ForgeKind::GitHub => Box::new(GitHubForge::new(config)?),
        ForgeKind::GitLab => Box::new(GitLabForge::new(config)?),
    })
}
