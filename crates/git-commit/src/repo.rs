//! Git operations on `git2`: open or clone, and commit exactly the changed files (the
//! push is in `push.rs`).

use crate::auth::GitAuth;
use crate::sign::SigningKey;
use crate::transport::{ensure_registered, redact_urls, scrub};
use crate::GitError;
use git2::FetchOptions;
use std::path::{Path, PathBuf};

/// An author or committer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// What to check out after cloning (Flux's `GitRepository.spec.ref`). Where several
/// fields are set Flux takes the commit, then the name, the semver range, the tag and the
/// branch; the caller picks one variant in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutRef {
    /// A branch (`spec.ref.branch`).
    Branch(String),
    /// A tag (`spec.ref.tag`); HEAD is detached.
    Tag(String),
    /// The highest tag in a Masterminds semver range (`spec.ref.semver`), tags parsed as
    /// Flux parses them; HEAD is detached at it. Among tags of equal version (build
    /// metadata aside) the one whose commit is newest wins, as in Flux; where that ties
    /// too, the greatest tag name (Flux's pick then depends on Go's map order).
    SemVer(String),
    /// A full reference name (`spec.ref.name`): `refs/heads/main`, `refs/tags/v1.0.0`,
    /// `refs/pull/42/head`; a trailing `^{}` names the commit an annotated tag points at.
    /// HEAD is detached.
    Name(String),
    /// A commit id (`spec.ref.commit`); HEAD is detached.
    Commit(String),
}

impl std::fmt::Display for CheckoutRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckoutRef::Branch(b) => write!(f, "branch {b}"),
            CheckoutRef::Tag(t) => write!(f, "tag {t}"),
            CheckoutRef::SemVer(r) => write!(f, "semver {r}"),
            CheckoutRef::Name(n) => write!(f, "ref {n}"),
            CheckoutRef::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

/// The tag of `tags` (name, commit time) that Flux's `spec.ref.semver` checks out.
///
/// ```
/// use tagsmith_git_commit::highest_tag_in_range;
/// let tags = [("v1.2.0", 10), ("v1.10.0", 5), ("v2.0.0", 20), ("v1.11.0-rc.1", 30)];
/// assert_eq!(highest_tag_in_range(">=1.0.0 <2.0.0", tags).unwrap(), Some("v1.10.0".into()));
/// assert!(highest_tag_in_range("not a range", tags).is_err());
/// ```
pub fn highest_tag_in_range<'a>(
    range: &str,
    tags: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<Option<String>, tagsmith_image_policy_core::PolicyError> {
    use tagsmith_image_policy_core::{Constraints, Version};
    let constraints = Constraints::parse(range)?;
    let mut best: Option<(Version<'a>, i64, &'a str)> = None;
    for (name, time) in tags {
        let Some(version) = Version::parse_flux(name).filter(|v| constraints.check(v)) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((top, top_time, top_name)) => version
                .compare(top)
                .then(time.cmp(top_time))
                .then(name.cmp(top_name))
                .is_gt(),
        };
        if better {
            best = Some((version, time, name));
        }
    }
    Ok(best.map(|(_, _, name)| name.to_string()))
}

/// How to clone.
#[derive(Debug, Clone, Default)]
pub struct CloneOptions {
    /// What to check out; the remote's default branch when `None`.
    pub reference: Option<CheckoutRef>,
    /// Credentials.
    pub auth: GitAuth,
    /// Fetch only the tip of a branch (depth 1) where the transport allows it.
    pub shallow: bool,
}

/// Who commits, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOptions {
    /// Author (Flux's `git.commit.author`).
    pub author: Signature,
    /// Committer; the author when absent.
    pub committer: Option<Signature>,
}

/// A local clone with a work tree, and the credentials for its remote.
pub struct Repository {
    pub(crate) repo: git2::Repository,
    pub(crate) auth: GitAuth,
    pub(crate) signing: Option<SigningKey>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("path", &self.repo.path())
            .finish()
    }
}

/// Paths as the index spells them: relative, `/`-separated, no `./` (which it refuses).
pub(crate) fn index_paths(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

fn git_err(context: &str) -> impl Fn(git2::Error) -> GitError + '_ {
    move |e| GitError::Git {
        context: context.to_string(),
        message: e.message().to_string(),
    }
}

impl Repository {
    /// Opens the repository containing `path`.
    pub fn open(path: &Path) -> Result<Self, GitError> {
        let repo = git2::Repository::discover(path).map_err(|e| GitError::Git {
            context: format!("opening {}", path.display()),
            message: e.message().to_string(),
        })?;
        if repo.is_bare() {
            return Err(GitError::Git {
                context: format!("opening {}", path.display()),
                message: "a bare repository has no work tree".into(),
            });
        }
        Ok(Repository {
            repo,
            auth: GitAuth::None,
            signing: None,
        })
    }

    /// Uses `auth` for fetches and pushes.
    pub fn with_auth(mut self, auth: GitAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Signs every commit with this OpenPGP key (Flux's `git.commit.signingKey`).
    pub fn with_signing_key(mut self, key: SigningKey) -> Self {
        self.signing = Some(key);
        self
    }

    /// Clones `url` into `dir`, checking out `branch` (the remote's default when `None`).
    pub fn clone(url: &str, dir: &Path, branch: Option<&str>) -> Result<Self, GitError> {
        Self::clone_with_auth(url, dir, branch, GitAuth::None)
    }

    /// Clones with credentials (SSH key with known_hosts, or HTTPS basic/token).
    pub fn clone_with_auth(
        url: &str,
        dir: &Path,
        branch: Option<&str>,
        auth: GitAuth,
    ) -> Result<Self, GitError> {
        ensure_registered()?;
        let mut builder = git2::build::RepoBuilder::new();
        if let Some(b) = branch {
            builder.branch(b);
        }
        let mut fetch = FetchOptions::new();
        fetch.remote_callbacks(auth.callbacks());
        builder.fetch_options(fetch);
        let repo = builder.clone(url, dir).map_err(|e| GitError::Git {
            context: format!("cloning {} into {}", redact_urls(url), dir.display()),
            message: scrub(e.message(), &auth),
        })?;
        drop(builder);
        Ok(Repository {
            repo,
            auth,
            signing: None,
        })
    }

    /// Clones `url` into `dir` and checks out `options.reference` (Flux's
    /// `GitRepository.spec.ref`): a branch (the remote's default when `None`), a tag or a
    /// commit; tags and commits leave HEAD detached, so pushing needs a push branch.
    /// `shallow` fetches only the tip (depth 1) for branch checkouts over a network
    /// transport; tags, commits and local paths are cloned in full (libgit2's local
    /// transport has no shallow mode, and a tag or commit may be anywhere in history).
    pub fn clone_with(url: &str, dir: &Path, options: &CloneOptions) -> Result<Self, GitError> {
        ensure_registered()?;
        let context = || format!("cloning {} into {}", redact_urls(url), dir.display());
        let mut builder = git2::build::RepoBuilder::new();
        let mut fetch = FetchOptions::new();
        fetch.remote_callbacks(options.auth.callbacks());
        let branch = match &options.reference {
            Some(CheckoutRef::Branch(b)) => Some(b.as_str()),
            _ => None,
        };
        if let Some(b) = branch {
            builder.branch(b);
        }
        let network = url.contains("://") && !url.starts_with("file://");
        if options.shallow
            && network
            && matches!(options.reference, None | Some(CheckoutRef::Branch(_)))
        {
            fetch.depth(1);
        }
        builder.fetch_options(fetch);
        let repo = builder.clone(url, dir).map_err(|e| GitError::Git {
            context: context(),
            message: scrub(e.message(), &options.auth),
        })?;
        drop(builder);
        let target = match &options.reference {
            None | Some(CheckoutRef::Branch(_)) => None,
            Some(reference @ CheckoutRef::Tag(tag)) => {
                Some((reference.to_string(), format!("refs/tags/{tag}")))
            }
            Some(reference @ CheckoutRef::Commit(id)) => Some((reference.to_string(), id.clone())),
            Some(CheckoutRef::SemVer(range)) => {
                let tag = Self::semver_tag(&repo, range, &options.auth).map_err(|message| {
                    GitError::Git {
                        context: format!("{}: checking out semver {range}", context()),
                        message,
                    }
                })?;
                tracing::info!(range, tag, "semver checkout");
                Some((
                    format!("tag {tag} (semver {range})"),
                    format!("refs/tags/{tag}"),
                ))
            }
            Some(reference @ CheckoutRef::Name(name)) => {
                // Fetched by name and read back from FETCH_HEAD: a pull request head or any
                // other ref the clone's default refspec does not bring. `^{}` (the commit
                // an annotated tag points at) is what the checkout below peels to anyway.
                let name = name.strip_suffix("^{}").unwrap_or(name);
                let what = reference.to_string();
                let failed = |message: String| GitError::Git {
                    context: format!("{}: checking out {what}", context()),
                    message,
                };
                let mut fetch = FetchOptions::new();
                fetch.remote_callbacks(options.auth.callbacks());
                // With tags on auto, libgit2 leaves a tag the clone already has out of
                // FETCH_HEAD.
                fetch.download_tags(git2::AutotagOption::None);
                repo.find_remote("origin")
                    .and_then(|mut r| r.fetch(&[name], Some(&mut fetch), None))
                    .map_err(|e| failed(scrub(e.message(), &options.auth)))?;
                let mut fetched = None;
                repo.fetchhead_foreach(|reference, _, oid, _| {
                    if reference == name {
                        fetched = Some(*oid);
                    }
                    true
                })
                .map_err(|e| failed(e.message().to_string()))?;
                let oid = fetched.ok_or_else(|| failed("the remote has no such ref".into()))?;
                Some((what, oid.to_string()))
            }
        };
        if let Some((what, spec)) = target {
            let commit = repo
                .revparse_single(&spec)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| GitError::Git {
                    context: format!("{}: checking out {what}", context()),
                    message: e.message().to_string(),
                })?;
            repo.checkout_tree(
                commit.as_object(),
                Some(git2::build::CheckoutBuilder::new().force()),
            )
            .and_then(|()| repo.set_head_detached(commit.id()))
            .map_err(|e| GitError::Git {
                context: format!("{}: checking out {what}", context()),
                message: e.message().to_string(),
            })?;
        }
        Ok(Repository {
            repo,
            auth: options.auth.clone(),
            signing: None,
        })
    }

    /// Fetches every tag of `origin` (a clone brings only those on fetched history) and
    /// picks the one `range` checks out; the error is the message for the caller's context.
    fn semver_tag(repo: &git2::Repository, range: &str, auth: &GitAuth) -> Result<String, String> {
        let mut fetch = FetchOptions::new();
        fetch.remote_callbacks(auth.callbacks());
        repo.find_remote("origin")
            .and_then(|mut r| r.fetch(&["+refs/tags/*:refs/tags/*"], Some(&mut fetch), None))
            .map_err(|e| format!("fetching tags: {}", scrub(e.message(), auth)))?;
        let names = repo.tag_names(None).map_err(|e| e.message().to_string())?;
        let mut tags = Vec::new();
        // Each name is a `Result<Option<&str>>`: names that are not UTF-8 cannot be a
        // version and are skipped.
        for name in names.iter().flatten().flatten() {
            // A tag that names no commit (a tagged blob or tree) cannot be checked out.
            let Ok(commit) = repo
                .revparse_single(&format!("refs/tags/{name}"))
                .and_then(|o| o.peel_to_commit())
            else {
                continue;
            };
            tags.push((name.to_string(), commit.committer().when().seconds()));
        }
        highest_tag_in_range(range, tags.iter().map(|(n, t)| (n.as_str(), *t)))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no tag matches semver {range} ({} tags)", tags.len()))
    }

    /// The checked-out commit id.
    pub fn head_commit(&self) -> Result<String, GitError> {
        self.repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id().to_string())
            .map_err(git_err("reading HEAD"))
    }

    /// The work tree.
    pub fn workdir(&self) -> &Path {
        self.repo.workdir().unwrap_or_else(|| self.repo.path())
    }

    /// The URL of remote `name` as configured (it may carry credentials: redact before
    /// showing it).
    pub fn remote_url(&self, name: &str) -> Result<String, GitError> {
        let remote = self
            .repo
            .find_remote(name)
            .map_err(git_err("finding the remote"))?;
        remote.url().map(str::to_string).map_err(|_| GitError::Git {
            context: format!("reading the URL of remote {name}"),
            message: "the URL is not UTF-8".into(),
        })
    }

    /// The checked-out branch's short name.
    pub fn current_branch(&self) -> Result<String, GitError> {
        let head = self.repo.head().map_err(git_err("reading HEAD"))?;
        head.shorthand()
            .ok()
            .filter(|_| head.is_branch())
            .map(str::to_string)
            .ok_or_else(|| GitError::Git {
                context: "reading HEAD".into(),
                message: "HEAD is detached; check out a branch or set push.branch".into(),
            })
    }

    /// Those of `paths` (relative to the work tree) whose content differs from `HEAD`, in
    /// the index or in the work tree. `commit_paths` commits whole files, so an apply step
    /// should refuse to write such a file: its commit would carry the user's own edits.
    pub fn uncommitted(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>, GitError> {
        let mut dirty = Vec::new();
        for (path, spec) in paths.iter().zip(index_paths(paths)) {
            let status = match self.repo.status_file(Path::new(&spec)) {
                Ok(status) => status,
                // Not tracked and not in the index: new to git, nothing of the user's to lose.
                Err(e) if e.code() == git2::ErrorCode::NotFound => continue,
                Err(e) => return Err(git_err("reading the status of changed files")(e)),
            };
            if !(status.is_empty() || status == git2::Status::IGNORED) {
                dirty.push(path.clone());
            }
        }
        Ok(dirty)
    }

    /// Stages exactly `paths` and commits them on HEAD; `None` when the tree did not
    /// change.
    pub fn commit_paths(
        &self,
        paths: &[PathBuf],
        message: &str,
        opts: &CommitOptions,
    ) -> Result<Option<String>, GitError> {
        if paths.is_empty() {
            return Ok(None);
        }
        let tree_id = stage(&self.repo, paths)?;
        let parent = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(git_err("reading HEAD"))?;
        if parent.tree_id() == tree_id {
            return Ok(None);
        }
        let id = create_commit(
            &self.repo,
            tree_id,
            &parent,
            message,
            opts,
            self.signing.as_ref(),
        )?;
        self.advance_head(id, message)?;
        Ok(Some(id.to_string()))
    }

    /// Moves HEAD's branch (or a detached HEAD) to `id`, as `git commit` does.
    fn advance_head(&self, id: git2::Oid, message: &str) -> Result<(), GitError> {
        let head = self.repo.head().map_err(git_err("reading HEAD"))?;
        let summary = message.lines().next().unwrap_or_default();
        if head.is_branch() {
            let name = head.name().unwrap_or("HEAD").to_string();
            self.repo
                .reference(&name, id, true, &format!("commit: {summary}"))
                .map_err(git_err("updating the branch"))?;
        } else {
            self.repo
                .set_head_detached(id)
                .map_err(git_err("updating HEAD"))?;
        }
        Ok(())
    }
}

/// Stages exactly `paths` in `repo`'s index and writes the tree.
pub(crate) fn stage(repo: &git2::Repository, paths: &[PathBuf]) -> Result<git2::Oid, GitError> {
    let mut index = repo.index().map_err(git_err("reading the index"))?;
    // add_path hashes each file: add_all trusts stat data, and a same-size rewrite in the
    // same second as the index write ("racy git") would be missed.
    for spec in index_paths(paths) {
        index
            .add_path(Path::new(&spec))
            .map_err(git_err("staging changed files"))?;
    }
    index.write().map_err(git_err("writing the index"))?;
    index.write_tree().map_err(git_err("writing the tree"))
}

/// Writes a commit of `tree` on `parent` (signed when a key is given) and returns its
/// id; no ref moves.
pub(crate) fn create_commit(
    repo: &git2::Repository,
    tree: git2::Oid,
    parent: &git2::Commit<'_>,
    message: &str,
    opts: &CommitOptions,
    signing: Option<&SigningKey>,
) -> Result<git2::Oid, GitError> {
    let tree = repo.find_tree(tree).map_err(git_err("reading the tree"))?;
    let author = git2::Signature::now(&opts.author.name, &opts.author.email)
        .map_err(git_err("author signature"))?;
    let committer = match &opts.committer {
        Some(c) => {
            git2::Signature::now(&c.name, &c.email).map_err(git_err("committer signature"))?
        }
        None => author.clone(),
    };
    let buffer = repo
        .commit_create_buffer(&author, &committer, message, &tree, &[parent])
        .map_err(git_err("building the commit"))?;
    let content = buffer.as_str().map_err(|_| GitError::Git {
        context: "building the commit".into(),
        message: "the commit is not UTF-8".into(),
    })?;
    match signing {
        None => repo
            .odb()
            .and_then(|odb| odb.write(git2::ObjectType::Commit, content.as_bytes()))
            .map_err(git_err("writing the commit")),
        Some(key) => {
            let signature = key.sign_bytes(content.as_bytes())?;
            repo.commit_signed(content, &signature, Some("gpgsig"))
                .map_err(git_err("writing the signed commit"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::highest_tag_in_range;

    fn pick(range: &str, tags: &[(&str, i64)]) -> Option<String> {
        highest_tag_in_range(range, tags.iter().copied()).expect("valid range")
    }

    #[test]
    fn semver_checkout_takes_the_highest_tag_in_range_as_flux_parses_tags() {
        let tags = [
            ("v1.2.0", 1),
            ("1.10.0", 1),
            ("v2.0.0", 1),
            ("v1.11.0-rc.1", 1), // a prerelease: outside a range that names none
            ("1.9", 1),          // one dot: not a version for Flux 2.7
            ("release", 1),
        ];
        assert_eq!(pick(">=1.0.0 <2.0.0", &tags).as_deref(), Some("1.10.0"));
        assert_eq!(pick("~1.2", &tags).as_deref(), Some("v1.2.0"));
        assert_eq!(
            pick(">=1.11.0-0 <2", &tags).as_deref(),
            Some("v1.11.0-rc.1")
        );
        assert_eq!(pick("*", &tags).as_deref(), Some("v2.0.0"));
        assert_eq!(pick(">=3", &tags), None);
        assert!(highest_tag_in_range(">=one", tags.iter().copied()).is_err());
    }

    #[test]
    fn equal_versions_go_to_the_newest_commit_then_the_greatest_name() {
        // Build metadata does not order versions; Flux then orders by the tag's commit time.
        let tags = [("1.0.0+b", 20), ("1.0.0+a", 30), ("v1.0.0", 10)];
        assert_eq!(pick("1.x", &tags).as_deref(), Some("1.0.0+a"));
        // Same time too: Flux's pick follows Go's map order; ours is the greatest name,
        // whatever order the tags come in.
        let tags = [("1.0.0+b", 5), ("1.0.0+a", 5), ("v1.0.0", 5)];
        let mut reversed = tags;
        reversed.reverse();
        assert_eq!(pick("1.x", &tags).as_deref(), Some("v1.0.0"));
        assert_eq!(pick("1.x", &reversed).as_deref(), Some("v1.0.0"));
    }
}
