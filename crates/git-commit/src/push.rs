//! [`commit_and_push`]: apply the change, commit it, push it, without ever losing or
//! publishing the user's own work.
//!
//! Two ways to work, chosen before anything is written:
//!
//! - **In the user's checkout**, when the push branch is the base branch and the base
//!   branch is checked out (Flux's default: push where you checked out). Refused up front
//!   when a tracked file has uncommitted changes or the branch holds commits the remote
//!   lacks; then the branch is brought to the remote tip, the change applied, committed
//!   and pushed fast-forward. A race (someone pushed first) fetches, moves the branch to
//!   their tip and re-applies.
//! - **In a temporary repository** otherwise (another push branch, another base branch,
//!   a detached checkout): a fresh repository that borrows the user's objects (git
//!   alternates, nothing copied) checks out the base, the remote's tip of the base branch
//!   as just fetched (never the user's local branch, so nothing unpushed rides along). The
//!   user's work tree, index, HEAD and refs are never touched; the temporary repository is
//!   deleted when the call returns, fails or panics. When the push branch is not the base
//!   branch it is rebuilt as base + the one update commit (Flux's `GitForcePushBranch`),
//!   pushed with a lease: only over commits the automation itself made, and only if the
//!   branch still is where the fetch saw it.
//!
//! In both, the only commit pushed is the one made here (pushed by id, never by a local
//! branch name), and a push a server refuses for another reason than a race (a hook, a
//! protected branch) is reported with the server's message and not retried.

use crate::auth::GitAuth;
use crate::repo::{create_commit, index_paths, stage, CommitOptions, Repository};
use crate::transport::{scrub, RemoteSpec};
use crate::GitError;
use git2::Oid;
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

/// Where to push: Flux's `git.push.branch` (default: the base branch), the branch the
/// automation builds on (`git.checkout.ref.branch`; default: the checked-out branch) and
/// `git.push.refspec` (pushed in addition, as Flux does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushTarget {
    /// The branch to push to; the base branch when `None`.
    pub branch: Option<String>,
    /// The branch the update is built on: its tip on the remote, freshly fetched, is the
    /// parent of the update commit. `None`: the checked-out branch, or with a detached
    /// HEAD the checked-out commit (which must be on the remote).
    pub base: Option<String>,
    /// An extra refspec to push the update commit to, e.g. `refs/heads/auto:refs/for/main`
    /// (Gerrit). Its source must name the pushed commit (`HEAD` or the push branch) and it
    /// must not force (`+`): only the automation's own commit is ever pushed.
    pub refspec: Option<String>,
    /// Git push options (`git push -o`), e.g. `merge_request.create` for GitLab; sent with
    /// every push of this target. The remote must advertise push options.
    pub options: Vec<String>,
}

/// What one application of the change produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Files changed, relative to the work tree.
    pub changed_files: Vec<PathBuf>,
    /// The commit message for these changes.
    pub message: String,
}

/// Error type an apply step may return.
pub type ApplyError = Box<dyn std::error::Error + Send + Sync>;

/// The remote push branch as the run found it, when nothing was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchState {
    /// The push branch is the base branch.
    IsBase,
    /// The remote has no push branch.
    Absent,
    /// The remote push branch holds nothing the base lacks (its tip is the base tip or an
    /// ancestor of it): an earlier update was merged.
    Merged {
        /// Its tip.
        tip: String,
    },
    /// The remote push branch holds commits the base lacks: an earlier update that is now
    /// stale (a pull request for it can be closed).
    Ahead {
        /// Its tip.
        tip: String,
    },
}

/// The result of [`commit_and_push`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The change changes nothing on the base: no commit, no push.
    NoChange {
        /// The remote push branch, for a caller that tracks a pull request from it.
        push_branch: BranchState,
    },
    /// One commit made and pushed.
    Pushed {
        /// The commit id.
        commit: String,
        /// The branch pushed to.
        branch: String,
        /// Push attempts (more than 1 after a race).
        attempts: u32,
        /// The message used.
        message: String,
        /// The push replaced commits on the branch (a rebuilt push branch whose previous
        /// update is not an ancestor of the new one).
        forced: bool,
    },
    /// The remote push branch already is the base tip plus this very change: nothing
    /// pushed.
    UpToDate {
        /// The remote push branch's tip.
        commit: String,
        /// The push branch.
        branch: String,
        /// The message the update would have (a pull request's title follows it).
        message: String,
    },
}

/// How many files a work-tree refusal names.
const LISTED_FILES: usize = 10;
/// How much of a remote's message (hook output, status) an error carries.
const REMOTE_MESSAGE_CHARS: usize = 1024;
/// How much sideband text is collected during one push.
const SIDEBAND_BYTES: usize = 16 * 1024;
/// How many commits of a push branch are checked for their author before giving up.
const LEASE_WALK: usize = 1000;

/// Applies the change, commits exactly the changed files, pushes; when the push is
/// rejected because someone pushed first, fetches, applies the change again on their tip
/// (a re-run, not a rebase) and retries, at most `max_attempts` times.
///
/// `apply` is called with the directory to change: the user's work tree when the push
/// branch is the checked-out base branch (tracked files then have no uncommitted
/// changes, or the call was refused before `apply` ran), else a temporary checkout of the
/// base that is deleted afterwards. See the module docs for both modes; the base branch is
/// only ever pushed fast-forward, and a separate push branch is rebuilt with a lease.
pub fn commit_and_push(
    repo: &Repository,
    commit: &CommitOptions,
    push: &PushTarget,
    remote: &str,
    max_attempts: u32,
    apply: &mut dyn FnMut(&Path) -> Result<ApplyOutcome, ApplyError>,
) -> Result<PushOutcome, GitError> {
    crate::transport::ensure_registered()?;
    let plan = Plan::new(repo, push, remote)?;
    let run = Run {
        repo,
        plan: &plan,
        commit,
        options: &push.options,
        max_attempts: max_attempts.max(1),
    };
    if plan.in_place {
        run.in_place(apply)
    } else {
        run.in_temporary_repository(apply)
    }
}

/// What the update is built on.
#[derive(Debug, Clone)]
enum Base {
    /// The remote's tip of this branch.
    Branch(String),
    /// The checked-out commit of a detached HEAD (a tag or commit checkout).
    Commit(Oid),
}

/// Everything decided before anything is fetched or written.
struct Plan {
    remote: RemoteSpec,
    base: Base,
    /// The push branch's short name.
    branch: String,
    /// Work in the user's checkout.
    in_place: bool,
    /// The push branch is not the base branch: rebuilt and pushed with a lease.
    rebuild: bool,
    /// The extra refspec's destination, with the refspec as written.
    extra: Option<(String, String)>,
}

fn valid_branch(name: &str, what: &str) -> Result<(), GitError> {
    if git2::Reference::is_valid_name(&format!("refs/heads/{name}")) {
        Ok(())
    } else {
        Err(GitError::Git {
            context: format!("{what} {name:?}"),
            message: "not a valid branch name".into(),
        })
    }
}

impl Plan {
    fn new(repo: &Repository, push: &PushTarget, remote: &str) -> Result<Self, GitError> {
        let current = repo.current_branch().ok();
        let base = match (&push.base, &current) {
            (Some(b), _) => Base::Branch(b.clone()),
            (None, Some(c)) => Base::Branch(c.clone()),
            (None, None) if push.branch.is_some() => {
                let head = repo
                    .repo
                    .head()
                    .and_then(|h| h.peel_to_commit())
                    .map_err(|e| GitError::Git {
                        context: "reading HEAD".into(),
                        message: e.message().to_string(),
                    })?;
                Base::Commit(head.id())
            }
            (None, None) => {
                return Err(GitError::Git {
                    context: "reading HEAD".into(),
                    message: "HEAD is detached; check out a branch or set push.branch".into(),
                })
            }
        };
        // A detached HEAD got here only with a push branch.
        let branch = match (&push.branch, &base) {
            (Some(b), _) | (None, Base::Branch(b)) => b.clone(),
            (None, Base::Commit(_)) => {
                return Err(GitError::Git {
                    context: "choosing the push branch".into(),
                    message: "HEAD is detached; set push.branch".into(),
                })
            }
        };
        valid_branch(&branch, "push branch")?;
        if let Base::Branch(b) = &base {
            valid_branch(b, "base branch")?;
        }
        let same_as_base = matches!(&base, Base::Branch(b) if *b == branch);
        let in_place = same_as_base && current.as_deref() == Some(branch.as_str());
        let extra = match &push.refspec {
            Some(spec) => Some((spec.clone(), extra_destination(spec, &branch)?)),
            None => None,
        };
        Ok(Plan {
            remote: RemoteSpec::of(&repo.repo, remote)?,
            base,
            branch,
            in_place,
            rebuild: !same_as_base,
            extra,
        })
    }
}

/// Checks an extra refspec and returns its destination ref. Only the update commit may
/// be pushed by it, and never with force.
fn extra_destination(spec: &str, branch: &str) -> Result<String, GitError> {
    let refused = |message: String| GitError::Refspec {
        refspec: spec.to_string(),
        message,
    };
    if spec.starts_with('+') {
        return Err(refused(
            "a forced refspec could overwrite others' commits; tagsmith pushes an extra refspec only fast-forward".into(),
        ));
    }
    let (src, dst) = spec.split_once(':').unwrap_or((spec, spec));
    let full = format!("refs/heads/{branch}");
    if !(src == "HEAD" || src == branch || src == full) {
        return Err(refused(format!(
            "its source must be the update commit (HEAD or {full}); tagsmith pushes only its own commit"
        )));
    }
    let dst = if dst == src && !dst.starts_with("refs/") {
        full
    } else {
        dst.to_string()
    };
    if !dst.starts_with("refs/") || !git2::Reference::is_valid_name(&dst) {
        return Err(refused(format!(
            "the destination {dst:?} is not a full ref name (refs/...)"
        )));
    }
    Ok(dst)
}

/// What a fetch saw: the remote's advertised refs.
struct Fetched {
    advertised: Vec<(String, Oid)>,
}

impl Fetched {
    fn tip(&self, branch: &str) -> Option<Oid> {
        let name = format!("refs/heads/{branch}");
        self.advertised
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
    }
}

/// Fetches `branches` of `remote` into `repo` (to `refs/remotes/NAME/BRANCH`) and returns
/// what the remote advertised; a branch the remote lacks is simply not advertised.
fn fetch(
    repo: &git2::Repository,
    remote: &RemoteSpec,
    auth: &GitAuth,
    branches: &[&str],
) -> Result<Fetched, GitError> {
    let mut r = remote.open(repo, false)?;
    let refspecs: Vec<String> = branches
        .iter()
        .map(|b| format!("+refs/heads/{b}:refs/remotes/{}/{b}", remote.name))
        .collect();
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(auth.callbacks());
    options.download_tags(git2::AutotagOption::None);
    let failed = |e: git2::Error| GitError::Git {
        context: format!(
            "fetching {} from {}",
            branches.join(", "),
            remote.fetch.display()
        ),
        message: scrub(e.message(), auth),
    };
    r.fetch(&refspecs, Some(&mut options), None)
        .map_err(failed)?;
    let advertised = r
        .list()
        .map_err(failed)?
        .iter()
        .map(|h| (h.name().to_string(), h.oid()))
        .collect();
    Ok(Fetched { advertised })
}

/// Whether `commit` is on the remote: an advertised ref, or one of `also` (the user's
/// remote-tracking refs), is it or descends from it.
fn is_published(repo: &git2::Repository, commit: Oid, fetched: &Fetched, also: &[Oid]) -> bool {
    fetched
        .advertised
        .iter()
        .map(|(_, id)| *id)
        .chain(also.iter().copied())
        .any(|tip| {
            tip == commit
                || (repo.find_commit(tip).is_ok()
                    && repo.graph_descendant_of(tip, commit).unwrap_or(false))
        })
}

fn branch_state(repo: &git2::Repository, tip: Option<Oid>, base: Oid) -> BranchState {
    match tip {
        None => BranchState::Absent,
        Some(t) if t == base || repo.graph_descendant_of(base, t).unwrap_or(false) => {
            BranchState::Merged { tip: t.to_string() }
        }
        Some(t) => BranchState::Ahead { tip: t.to_string() },
    }
}

fn same_email(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// The lease's first half: every commit on the remote push branch that the base lacks
/// was made by the automation (author and committer emails are its own), so rebuilding
/// the branch loses nobody's work.
fn only_ours_on_branch(
    repo: &git2::Repository,
    tip: Oid,
    base: Oid,
    opts: &CommitOptions,
    branch: &str,
) -> Result<(), GitError> {
    let failed = |e: git2::Error| GitError::Git {
        context: format!("reading the history of the push branch {branch}"),
        message: e.message().to_string(),
    };
    let author = &opts.author.email;
    let committer = &opts.committer.as_ref().unwrap_or(&opts.author).email;
    let mut walk = repo.revwalk().map_err(failed)?;
    walk.push(tip).map_err(failed)?;
    walk.hide(base).map_err(failed)?;
    for (seen, id) in walk.enumerate() {
        let id = id.map_err(failed)?;
        if seen >= LEASE_WALK {
            return Err(GitError::ForeignCommit {
                branch: branch.to_string(),
                commit: id.to_string(),
                author: format!("(more than {LEASE_WALK} commits ahead of the base; not checked)"),
            });
        }
        let c = repo.find_commit(id).map_err(failed)?;
        let (a, m) = (c.author(), c.committer());
        if !(same_email(a.email().ok(), author) && same_email(m.email().ok(), committer)) {
            return Err(GitError::ForeignCommit {
                branch: branch.to_string(),
                commit: id.to_string(),
                author: format!(
                    "{} <{}>",
                    a.name().unwrap_or_default(),
                    a.email().unwrap_or_default()
                ),
            });
        }
    }
    Ok(())
}

/// One push of the update commit.
struct PushRequest<'a> {
    /// The commit pushed (by id: no local branch is ever pushed).
    commit: Oid,
    /// The full destination ref.
    dst: &'a str,
    force: bool,
    /// The lease: what the destination must still be on the remote (`None`: absent).
    /// Checked in libgit2's push negotiation against the advertised value, which is also
    /// the old value receive-pack checks under its ref lock, so the check is atomic.
    expected: Option<Option<Oid>>,
    options: &'a [String],
}

/// How the remote answered.
#[derive(Debug)]
enum PushReply {
    Accepted,
    /// The ref moved (someone pushed first): fetch and try again.
    Race(String),
    /// Refused for any other reason (hook, protected branch, permission): the remote's
    /// status and message.
    Rejected(String),
}

/// Whether a per-ref status from receive-pack means the ref moved under us.
fn is_race(status: &str, forced: bool) -> bool {
    let s = status.to_ascii_lowercase();
    // A forced push is never "non-fast-forward" because of a race: the server refuses
    // rewrites (receive.denyNonFastForwards), which retrying cannot fix.
    (!forced && (s.contains("non-fast-forward") || s.contains("fetch first")))
        || s.contains("stale info")
        || s.contains("failed to lock")
        || s.contains("cannot lock")
        || s.contains("failed to update ref")
        || s.contains("incorrect old value")
}

/// The remote's sideband text as one bounded line: hook output, without transfer
/// progress meters.
fn remote_lines(raw: &[u8]) -> String {
    const PROGRESS: &[&str] = &[
        "Resolving deltas",
        "Unpacking objects",
        "Counting objects",
        "Compressing objects",
        "Writing objects",
        "Enumerating objects",
        "Total ",
    ];
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for line in text.split('\n') {
        // A progress meter rewrites its line with `\r`; keep what was last written.
        let line = line
            .rsplit('\r')
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let line = line.trim();
        let line = line.strip_prefix("remote:").map_or(line, str::trim);
        if line.is_empty() || PROGRESS.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str("remote: ");
        out.push_str(line);
        if out.chars().count() > REMOTE_MESSAGE_CHARS {
            break;
        }
    }
    if out.chars().count() > REMOTE_MESSAGE_CHARS {
        out = out.chars().take(REMOTE_MESSAGE_CHARS).collect::<String>() + "...";
    }
    out
}

fn with_remote_text(status: &str, remote: &str) -> String {
    match (status.is_empty(), remote.is_empty()) {
        (_, true) => status.to_string(),
        (true, false) => remote.to_string(),
        (false, false) => format!("{status}; {remote}"),
    }
}

fn push_commit(
    repo: &git2::Repository,
    remote: &RemoteSpec,
    auth: &GitAuth,
    request: &PushRequest<'_>,
) -> Result<PushReply, GitError> {
    let mut r = remote.open(repo, true)?;
    let refspec = format!(
        "{}{}:{}",
        if request.force { "+" } else { "" },
        request.commit,
        request.dst
    );
    let status: RefCell<Option<String>> = RefCell::new(None);
    let sideband: RefCell<Vec<u8>> = RefCell::new(Vec::new());
    let moved: Cell<Option<Oid>> = Cell::new(None);
    let result = {
        let mut callbacks = auth.callbacks();
        callbacks.push_update_reference(|_, s| {
            if let Some(s) = s {
                *status.borrow_mut() = Some(s.to_string());
            }
            Ok(())
        });
        callbacks.sideband_progress(|data| {
            let mut kept = sideband.borrow_mut();
            let room = SIDEBAND_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
            true
        });
        if let Some(expected) = request.expected {
            let expected = expected.unwrap_or(Oid::ZERO_SHA1);
            let dst = request.dst;
            let moved = &moved;
            callbacks.push_negotiation(move |updates| {
                for update in updates {
                    if update.dst_refname().ok() == Some(dst) && update.src() != expected {
                        moved.set(Some(update.src()));
                        return Err(git2::Error::from_str(
                            "the remote branch moved since it was fetched",
                        ));
                    }
                }
                Ok(())
            });
        }
        let mut options = git2::PushOptions::new();
        options.remote_callbacks(callbacks);
        let push_options: Vec<&str> = request.options.iter().map(String::as_str).collect();
        if !push_options.is_empty() {
            options.remote_push_options(&push_options);
        }
        r.push(&[refspec.as_str()], Some(&mut options))
    };
    let said = scrub(&remote_lines(&sideband.borrow()), auth);
    match result {
        Ok(()) => match status.borrow().as_deref() {
            None => Ok(PushReply::Accepted),
            Some(s) if is_race(s, request.force) => Ok(PushReply::Race(s.to_string())),
            Some(s) => Ok(PushReply::Rejected(with_remote_text(
                &scrub(s, auth),
                &said,
            ))),
        },
        Err(_) if moved.get().is_some() => Ok(PushReply::Race(format!(
            "{} is now at {}",
            request.dst,
            moved.get().map(|id| id.to_string()).unwrap_or_default()
        ))),
        Err(e) if e.code() == git2::ErrorCode::NotFastForward && !request.force => {
            Ok(PushReply::Race(e.message().to_string()))
        }
        Err(e) => Err(GitError::Git {
            context: format!("pushing to {} {}", remote.push.display(), request.dst),
            message: with_remote_text(&scrub(e.message(), auth), &said),
        }),
    }
}

/// One call of [`commit_and_push`].
struct Run<'a> {
    repo: &'a Repository,
    plan: &'a Plan,
    commit: &'a CommitOptions,
    options: &'a [String],
    max_attempts: u32,
}

impl Run<'_> {
    fn apply(
        apply: &mut dyn FnMut(&Path) -> Result<ApplyOutcome, ApplyError>,
        dir: &Path,
    ) -> Result<ApplyOutcome, GitError> {
        apply(dir).map_err(|e| GitError::Apply {
            message: e.to_string(),
        })
    }

    /// Pushes the extra refspec, if any, from `repo` (the update commit, fast-forward).
    fn push_extra(&self, repo: &git2::Repository, commit: Oid) -> Result<(), GitError> {
        let Some((spec, dst)) = &self.plan.extra else {
            return Ok(());
        };
        let request = PushRequest {
            commit,
            dst,
            force: false,
            expected: None,
            options: self.options,
        };
        match push_commit(repo, &self.plan.remote, &self.repo.auth, &request)? {
            PushReply::Accepted => Ok(()),
            PushReply::Race(message) | PushReply::Rejected(message) => {
                Err(GitError::PushRejected {
                    target: spec.clone(),
                    message,
                })
            }
        }
    }

    /// Push branch = base branch = the checked-out branch.
    fn in_place(
        &self,
        apply: &mut dyn FnMut(&Path) -> Result<ApplyOutcome, ApplyError>,
    ) -> Result<PushOutcome, GitError> {
        let repo = self.repo;
        let plan = self.plan;
        let branch = plan.branch.as_str();
        // Before anything is fetched or written: a race resets the branch, and the commit
        // takes whole files.
        repo.ensure_no_tracked_changes()?;
        let fetched = fetch(&repo.repo, &plan.remote, &repo.auth, &[branch])?;
        let head = repo
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| GitError::Git {
                context: "reading HEAD".into(),
                message: e.message().to_string(),
            })?;
        let mut tip = fetched.tip(branch);
        match tip {
            Some(t) if t == head => {}
            Some(t) if repo.repo.graph_descendant_of(t, head).unwrap_or(false) => {
                // Behind the remote: start from its tip, as a race would.
                repo.move_branch(branch, t)?;
            }
            Some(t) => {
                let (ahead, _) = repo.repo.graph_ahead_behind(head, t).unwrap_or((0, 0));
                return Err(GitError::WorkTree {
                    reason: format!(
                        "the checkout has {ahead} commit(s) that {}/{branch} does not; push or drop them first (tagsmith pushes only its own commit)",
                        plan.remote.name
                    ),
                });
            }
            None => {
                let tracking = repo.remote_tracking_tips(&plan.remote.name);
                if !is_published(&repo.repo, head, &fetched, &tracking) {
                    return Err(GitError::WorkTree {
                        reason: format!(
                            "{} has no branch {branch} and the checkout's commit {head} is not on it; creating the branch would publish it (tagsmith pushes only its own commit)",
                            plan.remote.name
                        ),
                    });
                }
            }
        }
        let dst = format!("refs/heads/{branch}");
        let workdir = repo.workdir().to_path_buf();
        for attempt in 1..=self.max_attempts {
            let outcome = Self::apply(apply, &workdir)?;
            let Some(id) =
                repo.commit_paths(&outcome.changed_files, &outcome.message, self.commit)?
            else {
                return Ok(PushOutcome::NoChange {
                    push_branch: BranchState::IsBase,
                });
            };
            let oid = Oid::from_str(&id).map_err(|e| GitError::Git {
                context: "reading the new commit's id".into(),
                message: e.message().to_string(),
            })?;
            let request = PushRequest {
                commit: oid,
                dst: &dst,
                force: false,
                expected: Some(tip),
                options: self.options,
            };
            let reply = push_commit(&repo.repo, &plan.remote, &repo.auth, &request);
            let undo = |error: GitError| -> GitError {
                // Not a race: leave the checkout as it was, so a rerun applies and pushes
                // again instead of finding nothing to change above an unpushed commit. The
                // push error is what the user must see; a failed undo is logged.
                if let Err(undo) = repo.undo_commit(&id, &outcome.changed_files) {
                    tracing::error!(commit = %id, error = %undo, "could not undo the unpushed commit");
                }
                error
            };
            match reply {
                Err(e) => return Err(undo(e)),
                Ok(PushReply::Rejected(message)) => {
                    return Err(undo(GitError::PushRejected {
                        target: branch.to_string(),
                        message,
                    }))
                }
                Ok(PushReply::Accepted) => {
                    self.push_extra(&repo.repo, oid)?;
                    return Ok(PushOutcome::Pushed {
                        commit: id,
                        branch: branch.to_string(),
                        attempts: attempt,
                        message: outcome.message,
                        forced: false,
                    });
                }
                Ok(PushReply::Race(why)) => {
                    tracing::warn!(%branch, attempt, %why, "push rejected (the branch moved); re-applying on the new tip");
                    let fetched = match fetch(&repo.repo, &plan.remote, &repo.auth, &[branch]) {
                        Ok(f) => f,
                        Err(e) => return Err(undo(e)),
                    };
                    tip = fetched.tip(branch);
                    let Some(new_tip) = tip else {
                        return Err(undo(GitError::Git {
                            context: format!("pushing to {branch}"),
                            message: "the remote branch was deleted during the push".into(),
                        }));
                    };
                    if let Err(e) = repo.move_branch(branch, new_tip) {
                        return Err(undo(e));
                    }
                }
            }
        }
        Err(GitError::PushRaceExhausted {
            branch: branch.to_string(),
            attempts: self.max_attempts,
        })
    }

    /// Any other push branch or base: built in a temporary repository.
    fn in_temporary_repository(
        &self,
        apply: &mut dyn FnMut(&Path) -> Result<ApplyOutcome, ApplyError>,
    ) -> Result<PushOutcome, GitError> {
        let plan = self.plan;
        let auth = &self.repo.auth;
        let place = TempPlace::new(&self.repo.repo, &plan.remote.name)?;
        let temp = &place.repo;
        let mut branches: Vec<&str> = Vec::new();
        if let Base::Branch(b) = &plan.base {
            branches.push(b);
        }
        if plan.rebuild {
            branches.push(&plan.branch);
        }
        let dst = format!("refs/heads/{}", plan.branch);
        for attempt in 1..=self.max_attempts {
            let fetched = fetch(temp, &plan.remote, auth, &branches)?;
            let base = match &plan.base {
                Base::Branch(b) => fetched.tip(b).ok_or_else(|| GitError::Git {
                    context: format!("building on {}/{b}", plan.remote.name),
                    message: "the remote has no such branch".into(),
                })?,
                Base::Commit(id) => {
                    let tracking = self.repo.remote_tracking_tips(&plan.remote.name);
                    if !is_published(temp, *id, &fetched, &tracking) {
                        return Err(GitError::WorkTree {
                            reason: format!(
                                "the checked-out commit {id} is not on {}; building on it would publish it (tagsmith pushes only its own commit)",
                                plan.remote.name
                            ),
                        });
                    }
                    *id
                }
            };
            let (expected, state) = if plan.rebuild {
                let tip = fetched.tip(&plan.branch);
                (tip, branch_state(temp, tip, base))
            } else {
                (Some(base), BranchState::IsBase)
            };
            if plan.rebuild {
                if let Some(tip) = expected {
                    only_ours_on_branch(temp, tip, base, self.commit, &plan.branch)?;
                }
            }
            let base_commit = place.checkout(base)?;
            let outcome = Self::apply(apply, &place.workdir)?;
            let tree = stage(temp, &outcome.changed_files)?;
            if outcome.changed_files.is_empty() || tree == base_commit.tree_id() {
                return Ok(PushOutcome::NoChange { push_branch: state });
            }
            if plan.rebuild {
                if let Some(tip) = expected.and_then(|t| temp.find_commit(t).ok()) {
                    if tip.parent_ids().eq([base]) && tip.tree_id() == tree {
                        return Ok(PushOutcome::UpToDate {
                            commit: tip.id().to_string(),
                            branch: plan.branch.clone(),
                            message: outcome.message,
                        });
                    }
                }
            }
            let id = create_commit(
                temp,
                tree,
                &base_commit,
                &outcome.message,
                self.commit,
                self.repo.signing.as_ref(),
            )?;
            let request = PushRequest {
                commit: id,
                dst: &dst,
                force: plan.rebuild,
                expected: Some(expected),
                options: self.options,
            };
            match push_commit(temp, &plan.remote, auth, &request)? {
                PushReply::Accepted => {
                    self.push_extra(temp, id)?;
                    let forced = expected.is_some_and(|old| {
                        old != base && !temp.graph_descendant_of(id, old).unwrap_or(false)
                    });
                    return Ok(PushOutcome::Pushed {
                        commit: id.to_string(),
                        branch: plan.branch.clone(),
                        attempts: attempt,
                        message: outcome.message,
                        forced,
                    });
                }
                PushReply::Rejected(message) => {
                    return Err(GitError::PushRejected {
                        target: plan.branch.clone(),
                        message,
                    })
                }
                PushReply::Race(why) => {
                    tracing::warn!(branch = %plan.branch, attempt, %why, "push rejected (the branch moved); fetching and re-applying");
                }
            }
        }
        Err(GitError::PushRaceExhausted {
            branch: plan.branch.clone(),
            attempts: self.max_attempts,
        })
    }
}

/// A temporary repository that borrows the user's objects (git alternates: nothing is
/// copied, and nothing is written to the user's repository). Deleted on drop, so also
/// when the call fails or panics.
struct TempPlace {
    // Field order: the repository closes before its folder is deleted.
    repo: git2::Repository,
    workdir: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempPlace {
    fn new(user: &git2::Repository, remote: &str) -> Result<Self, GitError> {
        let failed = |message: String| GitError::Git {
            context: "preparing a temporary checkout".into(),
            message,
        };
        let dir = tempfile::Builder::new()
            .prefix("tagsmith-update-")
            .tempdir()
            .map_err(|e| failed(e.to_string()))?;
        let workdir = dir.path().join("work");
        let git_dir = git2::Repository::init(&workdir)
            .map_err(|e| failed(e.message().to_string()))?
            .path()
            .to_path_buf();
        let objects = user.commondir().join("objects");
        let info = git_dir.join("objects/info");
        std::fs::create_dir_all(&info).map_err(|e| failed(e.to_string()))?;
        std::fs::write(info.join("alternates"), format!("{}\n", objects.display()))
            .map_err(|e| failed(e.to_string()))?;
        // A shallow clone's history stops at its grafts; without them the borrowed
        // history would look broken.
        let shallow = user.commondir().join("shallow");
        if shallow.is_file() {
            std::fs::copy(&shallow, git_dir.join("shallow")).map_err(|e| failed(e.to_string()))?;
        }
        // Opened again so that libgit2 reads the alternates.
        let repo = git2::Repository::open(&workdir).map_err(|e| failed(e.message().to_string()))?;
        // The user's view of the remote, so a fetch negotiates instead of downloading
        // everything. Remote-tracking refs only: the user's own branches stay out.
        if let Ok(refs) = user.references_glob(&format!("refs/remotes/{remote}/*")) {
            for r in refs.flatten() {
                if let (Ok(name), Some(id)) = (r.name(), r.target()) {
                    let _ = repo.reference(name, id, true, "tagsmith: seed");
                }
            }
        }
        Ok(TempPlace {
            repo,
            workdir,
            _dir: dir,
        })
    }

    /// Checks out `base` (detached), discarding whatever an earlier attempt wrote.
    fn checkout(&self, base: Oid) -> Result<git2::Commit<'_>, GitError> {
        let failed = |e: git2::Error| GitError::Git {
            context: format!("checking out {base} in a temporary checkout"),
            message: e.message().to_string(),
        };
        let commit = self.repo.find_commit(base).map_err(failed)?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force().remove_untracked(true);
        self.repo
            .checkout_tree(commit.as_object(), Some(&mut checkout))
            .map_err(failed)?;
        self.repo.set_head_detached(base).map_err(failed)?;
        let tree = commit.tree().map_err(failed)?;
        let mut index = self.repo.index().map_err(failed)?;
        index.read_tree(&tree).map_err(failed)?;
        index.write().map_err(failed)?;
        Ok(commit)
    }
}

impl Repository {
    /// Refuses a checkout whose tracked files have uncommitted changes (in the index or
    /// the work tree): a race moves the branch under them, and a commit takes whole
    /// files. Untracked files are fine. Names the files (at most [`LISTED_FILES`]).
    pub(crate) fn ensure_no_tracked_changes(&self) -> Result<(), GitError> {
        let mut options = git2::StatusOptions::new();
        options
            .include_untracked(false)
            .include_ignored(false)
            .exclude_submodules(true);
        let statuses = self
            .repo
            .statuses(Some(&mut options))
            .map_err(|e| GitError::Git {
                context: "reading the work tree status".into(),
                message: e.message().to_string(),
            })?;
        let changed: Vec<String> = statuses
            .iter()
            .filter(|s| !s.status().is_empty() && s.status() != git2::Status::IGNORED)
            .map(|s| String::from_utf8_lossy(s.path_bytes()).into_owned())
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = changed
            .iter()
            .take(LISTED_FILES)
            .map(String::as_str)
            .collect();
        let more = changed.len() - shown.len();
        Err(GitError::WorkTree {
            reason: format!(
                "uncommitted changes to {}{}; commit or stash them first (a push race moves the branch to the remote tip)",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        })
    }

    /// The user's `refs/remotes/REMOTE/*` tips: commits that were on the remote.
    pub(crate) fn remote_tracking_tips(&self, remote: &str) -> Vec<Oid> {
        self.repo
            .references_glob(&format!("refs/remotes/{remote}/*"))
            .map(|refs| refs.flatten().filter_map(|r| r.target()).collect())
            .unwrap_or_default()
    }

    /// Moves the checked-out `branch` and the work tree to `to`, as `git merge --ff-only`
    /// or a checkout would: only files that differ change, and an untracked file in the
    /// way stops it (nothing of the user's is overwritten).
    pub(crate) fn move_branch(&self, branch: &str, to: Oid) -> Result<(), GitError> {
        let target = self.repo.find_commit(to).map_err(|e| GitError::Git {
            context: format!("reading {to}"),
            message: e.message().to_string(),
        })?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.safe();
        self.repo
            .checkout_tree(target.as_object(), Some(&mut checkout))
            .map_err(|e| GitError::WorkTree {
                reason: format!(
                    "cannot move {branch} to the remote tip {to}: {} (an untracked file in the way?)",
                    e.message()
                ),
            })?;
        self.repo
            .reference(
                &format!("refs/heads/{branch}"),
                to,
                true,
                "tagsmith: move to the remote tip",
            )
            .map_err(|e| GitError::Git {
                context: format!("moving {branch} to {to}"),
                message: e.message().to_string(),
            })?;
        Ok(())
    }

    /// Moves the current branch back to the parent of `id` (a commit just made on it) and
    /// restores `paths` in the index and work tree from that parent. Nothing else in the
    /// work tree is touched.
    pub(crate) fn undo_commit(&self, id: &str, paths: &[PathBuf]) -> Result<(), GitError> {
        let failed = |context: &str| {
            let context = context.to_string();
            move |e: git2::Error| GitError::Git {
                context,
                message: e.message().to_string(),
            }
        };
        let oid = Oid::from_str(id).map_err(failed("reading the commit id"))?;
        let parent = self
            .repo
            .find_commit(oid)
            .and_then(|c| c.parent(0))
            .map_err(failed("finding the commit's parent"))?;
        let head = self.repo.head().map_err(failed("reading HEAD"))?;
        let branch = head
            .name()
            .map_err(failed("reading HEAD's name"))?
            .to_string();
        self.repo
            .reference(
                &branch,
                parent.id(),
                true,
                "tagsmith: undo the unpushed commit",
            )
            .map_err(failed("moving the branch back"))?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force();
        for path in index_paths(paths) {
            checkout.path(path);
        }
        self.repo
            .checkout_tree(parent.as_object(), Some(&mut checkout))
            .map_err(failed("restoring the changed files"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn races_are_told_from_refusals() {
        assert!(is_race("non-fast-forward", false));
        assert!(is_race("fetch first", false));
        assert!(is_race("failed to update ref", true));
        assert!(is_race("stale info", true));
        assert!(
            !is_race("non-fast-forward", true),
            "a server refusing rewrites"
        );
        assert!(!is_race("pre-receive hook declined", false));
        assert!(!is_race("protected branch hook declined", false));
        assert!(!is_race("deny updating a hidden ref", false));
    }

    #[test]
    fn extra_refspecs_push_only_the_update_commit_and_never_force() {
        assert_eq!(
            extra_destination("refs/heads/auto:refs/for/main", "auto").ok(),
            Some("refs/for/main".into())
        );
        assert_eq!(
            extra_destination("HEAD:refs/for/main", "auto").ok(),
            Some("refs/for/main".into())
        );
        assert_eq!(
            extra_destination("auto", "auto").ok(),
            Some("refs/heads/auto".into())
        );
        for refused in [
            "+refs/heads/auto:refs/heads/main",
            "refs/heads/main:refs/heads/auto",
            ":refs/heads/main",
            "HEAD:main",
        ] {
            let err = extra_destination(refused, "auto").expect_err(refused);
            assert_eq!(err.code(), "refspec", "{refused}");
        }
    }

    #[test]
    fn remote_text_keeps_hook_lines_and_drops_progress() {
        let raw = b"Resolving deltas:  50% (1/2)\rResolving deltas: 100% (2/2), done.\nNo pushes on Fridays\n\nsee https://bot:tok@wiki/x\n";
        assert_eq!(
            remote_lines(raw),
            "remote: No pushes on Fridays; remote: see https://bot:tok@wiki/x"
        );
        let long = "x".repeat(5000);
        assert!(remote_lines(long.as_bytes()).chars().count() <= REMOTE_MESSAGE_CHARS + 3);
    }
}
