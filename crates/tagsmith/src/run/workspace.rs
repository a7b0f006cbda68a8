//! Where a run works: the user's checkout, or a clone of a URL (`--url`), made once here
//! for the CLI, both bindings and the controller alike.

use crate::config::RunConfig;
use crate::crd::FluxObjects;
use crate::RunError;
use std::path::{Path, PathBuf};
use tagsmith_git_commit::{CheckoutRef, CloneOptions, GitAuth, Repository};

/// The checkout a run works in, and where its Flux objects are read.
#[derive(Debug)]
pub struct Workspace {
    /// The Git work tree the automations update.
    pub root: PathBuf,
    /// Where the Flux objects are read when that is another tree (`--url` when the
    /// automations work on another branch than the default one: Flux reads its objects from
    /// the cluster, which syncs them from the default branch).
    pub objects_root: Option<PathBuf>,
    /// Credentials given explicitly (configuration or environment): they serve the clone
    /// and every push; `GitAuth::None` leaves each automation its GitRepository's secret.
    pub git_auth: GitAuth,
    /// Keeps a clone's folder alive for the run.
    _clone: Option<tempfile::TempDir>,
}

impl Workspace {
    /// The checkout of `config.root` (default `.`), or a fresh clone of `config.url`.
    /// Blocking (libgit2): call it off async workers.
    pub fn prepare(config: &RunConfig) -> Result<Self, RunError> {
        let git_auth = config.git_credentials().into_auth()?;
        Self::prepare_with_auth(config, git_auth)
    }

    /// [`prepare`](Self::prepare) with credentials the caller already holds instead of the
    /// configuration's (the controller reads them from the GitRepository's Secret: nothing
    /// is written to disk). They serve the clone and every push. Blocking (libgit2).
    pub fn prepare_with_auth(config: &RunConfig, git_auth: GitAuth) -> Result<Self, RunError> {
        config
            .validate()
            .map_err(|message| RunError::Config { message })?;
        let Some(url) = &config.url else {
            let root = config.root_or_default();
            if !root.is_dir() {
                return Err(RunError::Config {
                    message: format!("{}: not a directory", root.display()),
                });
            }
            return Ok(Workspace {
                root,
                objects_root: None,
                git_auth,
                _clone: None,
            });
        };
        let dir = tempfile::tempdir().map_err(|e| RunError::Io {
            path: std::env::temp_dir(),
            message: e.to_string(),
        })?;
        let (root, objects_root) = clone_work_tree(
            url,
            config.branch.as_deref(),
            git_auth.clone(),
            config.config.as_deref(),
            dir.path(),
        )?;
        Ok(Workspace {
            root,
            objects_root,
            git_auth,
            _clone: Some(dir),
        })
    }

    /// The tree the Flux objects are read from.
    pub fn objects_tree(&self) -> &Path {
        self.objects_root.as_deref().unwrap_or(&self.root)
    }
}

/// Clones `url` under `dir` for a run. With `branch`, that branch. Without, the remote's
/// default branch, whose Flux objects (or `config`) say what the automations check out;
/// when that is something else it is cloned as the work tree too, and the objects keep
/// coming from the default branch. Returns the work tree and, when different, the objects'
/// tree.
fn clone_work_tree(
    url: &str,
    branch: Option<&str>,
    auth: GitAuth,
    config: Option<&Path>,
    dir: &Path,
) -> Result<(PathBuf, Option<PathBuf>), RunError> {
    let root = dir.join("repo");
    let repo = Repository::clone_with_auth(url, &root, branch, auth.clone())?;
    if branch.is_some() {
        return Ok((root, None));
    }
    let objects = match config {
        Some(file) => FluxObjects::load_file(file)?,
        None => crate::sources::load_tree(&root).objects,
    };
    let Some(wanted) = objects.checkout_target() else {
        return Ok((root, None));
    };
    if let CheckoutRef::Branch(b) = &wanted {
        if repo.current_branch().ok().as_deref() == Some(b.as_str()) {
            return Ok((root, None));
        }
    }
    tracing::info!(reference = %wanted, "cloning what the automations check out");
    let work = dir.join("checkout");
    Repository::clone_with(
        url,
        &work,
        &CloneOptions {
            reference: Some(wanted),
            auth,
            shallow: false,
        },
    )?;
    Ok((work, Some(root)))
}
