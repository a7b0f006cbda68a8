//! The user's work is never lost or published, and a separate push branch is rebuilt on
//! the remote base with a lease (Flux's `GitForcePushBranch`), against real bare remotes.

mod common;

use common::{bot, fleet, set_version, to_branch};
use std::path::{Path, PathBuf};
use tagsmith_git_commit::{commit_and_push, BranchState, PushOutcome, PushTarget, Repository};
use tagsmith_testkit::git::{git, BareRemote};

fn push_version(
    repo: &Repository,
    target: &PushTarget,
    version: &str,
) -> Result<PushOutcome, tagsmith_git_commit::GitError> {
    commit_and_push(repo, &bot(), target, "origin", 3, &mut |d| {
        set_version(d, version)
    })
}

/// Everything `git` knows about the checkout's state: HEAD, branches, index and work tree.
fn checkout_state(work: &Path) -> (String, String, String, String) {
    (
        git(work, &["symbolic-ref", "HEAD"]),
        git(work, &["for-each-ref", "refs/heads"]),
        git(work, &["status", "--porcelain=v1", "--untracked-files=all"]),
        git(work, &["diff", "HEAD"]),
    )
}

/// A teammate (a human) pushes `content` to `branch` of the remote.
fn human_pushes(remote: &BareRemote, name: &str, branch: &str, file: &str, content: &str) {
    let clone = remote.clone_to(name);
    if branch != "main" {
        git(&clone, &["checkout", "-q", "-B", branch]);
    }
    std::fs::write(clone.join(file), content).expect("write");
    git(&clone, &["add", "-A"]);
    git(
        &clone,
        &[
            "-c",
            "user.name=Jane",
            "-c",
            "user.email=jane@example.com",
            "commit",
            "-qm",
            &format!("jane edits {file}"),
        ],
    );
    git(
        &clone,
        &["push", "-q", "-f", "origin", &format!("HEAD:{branch}")],
    );
}

#[test]
fn a_push_branch_leaves_the_users_edits_head_and_unpushed_commits_alone() {
    let (remote, work) = fleet();
    // A local commit the remote must never see, and an uncommitted edit that must survive.
    std::fs::write(work.join("secrets.yaml"), "password: hunter2\n").expect("write");
    git(&work, &["add", "secrets.yaml"]);
    git(&work, &["commit", "-qm", "local only"]);
    let local_commit = git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(work.join("apps/other.yaml"), "untouched: false\n").expect("write");
    std::fs::write(work.join("apps/scratch.yaml"), "mine: true\n").expect("write");
    let before = checkout_state(&work);

    let repo = Repository::open(&work).expect("open");
    let outcome = push_version(&repo, &to_branch("image-updates"), "1.1.0").expect("push");
    let PushOutcome::Pushed {
        commit,
        branch,
        forced,
        ..
    } = outcome
    else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!((branch.as_str(), forced), ("image-updates", false));

    // The checkout is exactly as it was: same branch, same commits, same edits.
    assert_eq!(checkout_state(&work), before);
    assert_eq!(
        std::fs::read_to_string(work.join("apps/other.yaml")).expect("read"),
        "untouched: false\n"
    );
    // The update was built on the remote's main, not on the local branch.
    let main = remote.tip("main").expect("main");
    assert_eq!(
        git(&remote.path, &["rev-parse", &format!("{commit}^")]).trim(),
        main
    );
    assert_eq!(
        remote.log("image-updates"),
        ["Update app to 1.1.0", "initial"]
    );
    assert_eq!(
        git(&remote.path, &["diff", "--name-only", &main, &commit]).trim(),
        "apps/app.yaml"
    );
    // Nothing of the user's reached the remote.
    assert!(!remote.has_object(&local_commit));
    let everything = git(&remote.path, &["log", "--all", "-p"]);
    assert!(!everything.contains("hunter2"), "{everything}");
    assert_eq!(remote.log("main"), ["initial"]);
}

#[test]
fn the_base_branch_is_pushed_from_another_checkout_without_touching_it() {
    let (remote, work) = fleet();
    git(&work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(work.join("apps/app.yaml"), "image: mine\n").expect("write");
    let before = checkout_state(&work);
    let repo = Repository::open(&work).expect("open");
    let target = PushTarget {
        base: Some("main".into()),
        ..Default::default()
    };
    let outcome = push_version(&repo, &target, "1.2.0").expect("push");
    assert!(
        matches!(&outcome, PushOutcome::Pushed { branch, forced: false, .. } if branch == "main"),
        "{outcome:?}"
    );
    assert_eq!(checkout_state(&work), before);
    assert_eq!(remote.log("main"), ["Update app to 1.2.0", "initial"]);
}

#[test]
fn tracked_edits_are_refused_before_the_remote_is_contacted() {
    let (_remote, work) = fleet();
    // The remote is unreachable: a fetch would fail with a git error, not a work-tree one.
    git(
        &work,
        &["remote", "set-url", "origin", "/nonexistent/remote.git"],
    );
    for n in 0..12 {
        std::fs::write(work.join(format!("extra-{n:02}.yaml")), "x: 1\n").expect("write");
    }
    git(&work, &["add", "-A"]);
    std::fs::write(work.join("apps/other.yaml"), "untouched: false\n").expect("write");
    let repo = Repository::open(&work).expect("open");
    let mut applied = false;
    let err = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        3,
        &mut |d| {
            applied = true;
            set_version(d, "1.1.0")
        },
    )
    .expect_err("refused");
    assert_eq!(err.code(), "work_tree", "{err}");
    let text = err.to_string();
    assert!(
        text.contains("apps/other.yaml") && text.contains("extra-00.yaml"),
        "{text}"
    );
    assert!(text.contains("and 3 more"), "the list is bounded: {text}");
    assert!(!applied, "nothing was written");
}

#[test]
fn unpushed_commits_on_the_pushed_branch_are_refused() {
    let (remote, work) = fleet();
    std::fs::write(work.join("secrets.yaml"), "password: hunter2\n").expect("write");
    git(&work, &["add", "secrets.yaml"]);
    git(&work, &["commit", "-qm", "local only"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let repo = Repository::open(&work).expect("open");
    let err = push_version(&repo, &PushTarget::default(), "1.1.0").expect_err("refused");
    assert_eq!(err.code(), "work_tree");
    assert!(err.to_string().contains("1 commit(s)"), "{err}");
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert_eq!(remote.log("main"), ["initial"]);
}

#[test]
fn a_new_branch_is_not_created_from_unpublished_commits() {
    let (remote, work) = fleet();
    git(&work, &["checkout", "-q", "-b", "mine"]);
    std::fs::write(work.join("secrets.yaml"), "password: hunter2\n").expect("write");
    git(&work, &["add", "secrets.yaml"]);
    git(&work, &["commit", "-qm", "local only"]);
    let repo = Repository::open(&work).expect("open");
    // Pushing the checked-out branch `mine`, which the remote lacks, would publish it.
    let err = push_version(&repo, &PushTarget::default(), "1.1.0").expect_err("refused");
    assert_eq!(err.code(), "work_tree", "{err}");
    assert!(remote.tip("mine").is_none());
}

#[test]
fn a_checkout_behind_the_remote_is_brought_to_its_tip_first() {
    let (remote, work) = fleet();
    human_pushes(
        &remote,
        "jane",
        "main",
        "apps/other.yaml",
        "jane: was here\n",
    );
    let repo = Repository::open(&work).expect("open");
    let mut calls = 0;
    let outcome = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        3,
        &mut |d| {
            calls += 1;
            set_version(d, "1.1.0")
        },
    )
    .expect("push");
    assert!(
        matches!(outcome, PushOutcome::Pushed { attempts: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(calls, 1, "no race: the update was built on the remote tip");
    assert_eq!(
        remote.log("main"),
        [
            "Update app to 1.1.0",
            "jane edits apps/other.yaml",
            "initial"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(work.join("apps/other.yaml")).expect("read"),
        "jane: was here\n"
    );
}

#[test]
fn an_untracked_file_in_the_way_of_the_remote_tip_is_never_overwritten() {
    let (remote, work) = fleet();
    human_pushes(&remote, "jane", "main", "apps/new.yaml", "jane: new\n");
    std::fs::write(work.join("apps/new.yaml"), "mine: untracked\n").expect("write");
    let repo = Repository::open(&work).expect("open");
    let err = push_version(&repo, &PushTarget::default(), "1.1.0").expect_err("refused");
    assert_eq!(err.code(), "work_tree", "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("apps/new.yaml")).expect("read"),
        "mine: untracked\n"
    );
}

#[test]
fn the_push_branch_is_rebuilt_on_the_new_base_over_its_own_earlier_update() {
    let (remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    let first = push_version(&repo, &to_branch("auto"), "1.1.0").expect("first");
    let PushOutcome::Pushed { commit: old, .. } = first else {
        panic!("{first:?}");
    };
    // main moves on; the next update is rebuilt on it, replacing the bot's own commit.
    human_pushes(
        &remote,
        "jane",
        "main",
        "apps/other.yaml",
        "jane: was here\n",
    );
    let second = push_version(&repo, &to_branch("auto"), "1.2.0").expect("second");
    let PushOutcome::Pushed {
        commit,
        forced,
        attempts,
        ..
    } = second
    else {
        panic!("{second:?}");
    };
    assert!(forced, "the earlier update was replaced");
    assert_eq!(attempts, 1);
    assert_eq!(remote.tip("auto").as_deref(), Some(commit.as_str()));
    assert_eq!(
        git(&remote.path, &["rev-parse", "auto^"]).trim(),
        remote.tip("main").expect("main")
    );
    assert_eq!(
        remote.log("auto"),
        [
            "Update app to 1.2.0",
            "jane edits apps/other.yaml",
            "initial"
        ]
    );
    assert_ne!(commit, old);
}

#[test]
fn a_push_branch_holding_someone_elses_commit_is_not_overwritten() {
    let (remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    push_version(&repo, &to_branch("auto"), "1.1.0").expect("first");
    // Jane adds her own commit on the bot's branch.
    let jane = remote.clone_to("jane");
    git(&jane, &["checkout", "-q", "-b", "auto", "origin/auto"]);
    std::fs::write(jane.join("apps/other.yaml"), "jane: fix\n").expect("write");
    git(
        &jane,
        &[
            "-c",
            "user.name=Jane",
            "-c",
            "user.email=jane@example.com",
            "commit",
            "-qam",
            "jane's fix",
        ],
    );
    git(&jane, &["push", "-q", "origin", "auto"]);
    let janes = remote.tip("auto").expect("auto");
    let err = push_version(&repo, &to_branch("auto"), "1.2.0").expect_err("refused");
    assert_eq!(err.code(), "foreign_commit", "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&janes) && text.contains("jane@example.com"),
        "{text}"
    );
    assert_eq!(remote.tip("auto"), Some(janes));
}

#[test]
fn the_lease_keeps_a_commit_pushed_between_fetch_and_push() {
    let (remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    push_version(&repo, &to_branch("auto"), "1.1.0").expect("first");
    let mut calls = 0;
    let err = commit_and_push(&repo, &bot(), &to_branch("auto"), "origin", 3, &mut |d| {
        calls += 1;
        if calls == 1 {
            // After our fetch, before our push: Jane pushes to the bot's branch.
            human_pushes(&remote, "jane", "auto", "apps/other.yaml", "jane: raced\n");
        }
        set_version(d, "1.2.0")
    })
    .expect_err("refused on the next attempt");
    // The push saw the branch move (no overwrite), fetched again and found Jane's commit.
    assert_eq!(err.code(), "foreign_commit", "{err}");
    assert_eq!(calls, 1);
    assert_eq!(remote.log("auto")[0], "jane edits apps/other.yaml");
}

#[test]
fn an_up_to_date_push_branch_is_not_pushed_again() {
    let (remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    let first = push_version(&repo, &to_branch("auto"), "1.1.0").expect("first");
    let PushOutcome::Pushed { commit, .. } = first else {
        panic!("{first:?}");
    };
    let again = push_version(&repo, &to_branch("auto"), "1.1.0").expect("again");
    let PushOutcome::UpToDate {
        commit: tip,
        branch,
        message,
    } = again
    else {
        panic!("{again:?}");
    };
    assert_eq!((tip.as_str(), branch.as_str()), (commit.as_str(), "auto"));
    assert!(!message.is_empty());
    assert_eq!(remote.tip("auto"), Some(commit));
}

#[test]
fn no_change_on_the_base_reports_the_push_branch_state() {
    let (remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    // Nothing to change and no push branch.
    let outcome = push_version(&repo, &to_branch("auto"), "1.0.0").expect("no change");
    assert_eq!(
        outcome,
        PushOutcome::NoChange {
            push_branch: BranchState::Absent
        }
    );
    // An earlier update is still open on auto, but main now has the version: stale.
    push_version(&repo, &to_branch("auto"), "1.1.0").expect("update");
    let stale = remote.tip("auto").expect("auto");
    human_pushes(
        &remote,
        "jane",
        "main",
        "apps/app.yaml",
        "image: reg.example.com/app:2.0.0\n",
    );
    let outcome = push_version(&repo, &to_branch("auto"), "2.0.0").expect("no change");
    assert_eq!(
        outcome,
        PushOutcome::NoChange {
            push_branch: BranchState::Ahead { tip: stale }
        }
    );
    // Merged: auto is an ancestor of main.
    git(&remote.path, &["update-ref", "refs/heads/auto", "main~1"]);
    let merged = remote.tip("auto").expect("auto");
    let outcome = push_version(&repo, &to_branch("auto"), "2.0.0").expect("no change");
    assert_eq!(
        outcome,
        PushOutcome::NoChange {
            push_branch: BranchState::Merged { tip: merged }
        }
    );
    assert_eq!(remote.log("main")[0], "jane edits apps/app.yaml");
}

#[test]
fn the_temporary_checkout_is_removed_after_success_error_and_panic() {
    let (_remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    let mut seen: Vec<PathBuf> = Vec::new();
    push_version(&repo, &to_branch("auto"), "1.1.0").expect("push");
    commit_and_push(&repo, &bot(), &to_branch("auto"), "origin", 1, &mut |d| {
        seen.push(d.to_path_buf());
        set_version(d, "1.2.0")
    })
    .expect("push");
    let err = commit_and_push(&repo, &bot(), &to_branch("auto"), "origin", 1, &mut |d| {
        seen.push(d.to_path_buf());
        Err("the setter failed".into())
    })
    .expect_err("apply failed");
    assert_eq!(err.code(), "apply");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = commit_and_push(&repo, &bot(), &to_branch("auto"), "origin", 1, &mut |d| {
            seen.push(d.to_path_buf());
            panic!("the setter panicked");
        });
    }));
    assert!(panicked.is_err());
    assert_eq!(seen.len(), 3);
    for dir in &seen {
        assert_ne!(dir, &work, "never the user's checkout");
        assert!(!dir.exists(), "{} was left behind", dir.display());
    }
}

#[test]
fn a_detached_checkout_of_an_unpublished_commit_is_not_built_on() {
    let (remote, work) = fleet();
    std::fs::write(work.join("secrets.yaml"), "password: hunter2\n").expect("write");
    git(&work, &["add", "secrets.yaml"]);
    git(&work, &["commit", "-qm", "local only"]);
    git(&work, &["checkout", "-q", "--detach"]);
    let repo = Repository::open(&work).expect("open");
    let err = push_version(&repo, &to_branch("auto"), "1.1.0").expect_err("refused");
    assert_eq!(err.code(), "work_tree", "{err}");
    assert!(remote.tip("auto").is_none());
}

#[test]
fn an_extra_refspec_pushes_the_update_commit_and_nothing_else() {
    let (remote, work) = fleet();
    std::fs::write(work.join("secrets.yaml"), "password: hunter2\n").expect("write");
    git(&work, &["add", "secrets.yaml"]);
    git(&work, &["commit", "-qm", "local only"]);
    let repo = Repository::open(&work).expect("open");
    let target = PushTarget {
        branch: Some("auto".into()),
        refspec: Some("refs/heads/auto:refs/heads/review".into()),
        ..Default::default()
    };
    let outcome = push_version(&repo, &target, "1.1.0").expect("push");
    let PushOutcome::Pushed { commit, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(remote.tip("auto").as_deref(), Some(commit.as_str()));
    assert_eq!(remote.tip("review").as_deref(), Some(commit.as_str()));
    assert!(!git(&remote.path, &["log", "--all", "-p"]).contains("hunter2"));
}

#[test]
fn a_refspec_that_would_push_another_branch_or_force_is_refused_before_anything_is_pushed() {
    let (remote, work) = fleet();
    let repo = Repository::open(&work).expect("open");
    for refspec in [
        "refs/heads/main:refs/heads/review",
        "+refs/heads/auto:refs/heads/main",
    ] {
        let target = PushTarget {
            branch: Some("auto".into()),
            refspec: Some(refspec.into()),
            ..Default::default()
        };
        let mut applied = false;
        let err = commit_and_push(&repo, &bot(), &target, "origin", 3, &mut |d| {
            applied = true;
            set_version(d, "1.1.0")
        })
        .expect_err(refspec);
        assert_eq!(err.code(), "refspec", "{refspec}: {err}");
        assert!(!applied, "{refspec}: refused before anything was written");
        assert!(remote.tip("auto").is_none() && remote.tip("review").is_none());
    }
}

#[test]
fn the_base_branch_built_elsewhere_survives_a_race_fast_forward() {
    let (remote, work) = fleet();
    git(&work, &["checkout", "-q", "-b", "feature"]);
    let repo = Repository::open(&work).expect("open");
    let target = PushTarget {
        base: Some("main".into()),
        ..Default::default()
    };
    let mut calls = 0;
    let outcome = commit_and_push(&repo, &bot(), &target, "origin", 3, &mut |d| {
        calls += 1;
        if calls == 1 {
            human_pushes(&remote, "jane", "main", "apps/other.yaml", "jane: first\n");
        }
        set_version(d, "1.3.0")
    })
    .expect("converges");
    assert!(
        matches!(
            outcome,
            PushOutcome::Pushed {
                attempts: 2,
                forced: false,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        remote.log("main"),
        [
            "Update app to 1.3.0",
            "jane edits apps/other.yaml",
            "initial"
        ]
    );
}

#[test]
fn another_run_of_the_automation_racing_on_the_push_branch_is_rebuilt_over() {
    let (remote, work) = fleet();
    let other = remote.clone_to("other");
    let repo = Repository::open(&work).expect("open");
    let other_repo = Repository::open(&other).expect("open");
    let mut calls = 0;
    let outcome = commit_and_push(&repo, &bot(), &to_branch("auto"), "origin", 3, &mut |d| {
        calls += 1;
        if calls == 1 {
            // A second runner of the same automation (same identity) pushes first.
            push_version(&other_repo, &to_branch("auto"), "1.1.0").expect("other run");
        }
        set_version(d, "1.2.0")
    })
    .expect("rebuilt");
    assert!(
        matches!(
            outcome,
            PushOutcome::Pushed {
                attempts: 2,
                forced: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(remote.log("auto"), ["Update app to 1.2.0", "initial"]);
}
