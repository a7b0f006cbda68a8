//! Commit and push against real remotes: bare repositories over file:// and git daemon.

mod common;

use common::{bot, fleet, set_version, to_branch, FILES};
use tagsmith_git_commit::{commit_and_push, BranchState, PushOutcome, PushTarget, Repository};
use tagsmith_testkit::git::{git, BareRemote, GitDaemon};

#[test]
fn commits_exactly_the_changed_file_over_file_url() {
    let (remote, work) = fleet();
    // An uncommitted edit to a tracked file stops a push before anything is written: a
    // race would reset the branch under it.
    std::fs::write(work.join("apps/other.yaml"), "untouched: false\n").expect("write");
    let repo = Repository::open(&work).expect("open");
    let err = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        3,
        &mut |d| set_version(d, "1.1.0"),
    )
    .expect_err("refused");
    assert_eq!(err.code(), "work_tree");
    assert!(err.to_string().contains("apps/other.yaml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(work.join("apps/other.yaml")).expect("read"),
        "untouched: false\n"
    );
    assert!(std::fs::read_to_string(work.join("apps/app.yaml"))
        .expect("read")
        .contains("app:1.0.0"));
    assert_eq!(remote.log("main"), ["initial"]);
    git(&work, &["checkout", "--", "apps/other.yaml"]);
    // An untracked file is the user's and stays out of the commit.
    std::fs::write(work.join("apps/scratch.yaml"), "mine: true\n").expect("write");
    let outcome = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        3,
        &mut |d| set_version(d, "1.1.0"),
    )
    .expect("push");
    let PushOutcome::Pushed {
        attempts, branch, ..
    } = outcome
    else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!((attempts, branch.as_str()), (1, "main"));
    assert_eq!(remote.log("main"), ["Update app to 1.1.0", "initial"]);
    assert_eq!(
        remote.show("main", "apps/app.yaml"),
        "image: reg.example.com/app:1.1.0\n"
    );
    assert_eq!(remote.show("main", "apps/other.yaml"), "untouched: true\n");
    let files = git(&remote.path, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(!files.contains("scratch.yaml"), "{files}");
    assert!(work.join("apps/scratch.yaml").is_file());
    let author = git(&remote.path, &["log", "-1", "--format=%an <%ae>", "main"]);
    assert_eq!(author.trim(), "image-bot <bot@example.com>");

    // Running again changes nothing: no commit, no push.
    let outcome = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        3,
        &mut |d| set_version(d, "1.1.0"),
    )
    .expect("second run");
    assert_eq!(
        outcome,
        PushOutcome::NoChange {
            push_branch: BranchState::IsBase
        }
    );
    assert_eq!(remote.log("main").len(), 2);
}

#[test]
fn pushes_to_a_new_branch_over_git_daemon() {
    let remote = BareRemote::with_files(FILES);
    let base = remote.path.parent().expect("parent").to_path_buf();
    let daemon = GitDaemon::start(&base);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::clone(&url, &dir.path().join("work"), Some("main")).expect("clone");
    let target = to_branch("image-updates");
    let outcome = commit_and_push(&repo, &bot(), &target, "origin", 3, &mut |d| {
        set_version(d, "2.0.0")
    })
    .expect("push");
    assert!(matches!(outcome, PushOutcome::Pushed { ref branch, .. } if branch == "image-updates"));
    assert_eq!(
        remote.log("image-updates"),
        ["Update app to 2.0.0", "initial"]
    );
    assert_eq!(remote.log("main"), ["initial"], "main is untouched");
}

/// Push options reach the server (as GitLab's `merge_request.create` would), over the
/// git protocol to a `git daemon` whose receive-pack advertises them; a post-receive hook
/// records what it got.
#[test]
fn push_options_reach_the_remote() {
    use std::os::unix::fs::PermissionsExt;
    let remote = BareRemote::with_files(FILES);
    git(
        &remote.path,
        &["config", "receive.advertisePushOptions", "true"],
    );
    let seen = remote.path.join("push-options.txt");
    let hook = remote.path.join("hooks/post-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ni=0\nwhile [ $i -lt \"${{GIT_PUSH_OPTION_COUNT:-0}}\" ]; do\n  eval \"echo \\$GIT_PUSH_OPTION_$i\" >> '{}'\n  i=$((i+1))\ndone\n",
            seen.display()
        ),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let base = remote.path.parent().expect("parent").to_path_buf();
    let daemon = GitDaemon::start(&base);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::clone(&url, &dir.path().join("work"), Some("main")).expect("clone");
    let target = PushTarget {
        branch: Some("dev".into()),
        options: vec![
            "merge_request.create".into(),
            "merge_request.target=release".into(),
        ],
        ..Default::default()
    };
    let outcome = commit_and_push(&repo, &bot(), &target, "origin", 3, &mut |d| {
        set_version(d, "2.0.0")
    })
    .expect("push");
    assert!(matches!(outcome, PushOutcome::Pushed { ref branch, .. } if branch == "dev"));
    assert_eq!(
        std::fs::read_to_string(&seen).expect("the hook ran"),
        "merge_request.create\nmerge_request.target=release\n"
    );
}

#[test]
fn a_racing_push_is_survived_by_reapplying_without_force() {
    let (remote, work) = fleet();
    let teammate = remote.clone_to("teammate");
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
            if calls == 1 {
                // Between our fetch and our push, a teammate pushes to main.
                std::fs::write(teammate.join("apps/other.yaml"), "teammate: was here\n")?;
                git(&teammate, &["commit", "-qam", "teammate change"]);
                git(&teammate, &["push", "-q", "origin", "HEAD:main"]);
            }
            set_version(d, "1.2.0")
        },
    )
    .expect("converges");
    assert!(
        matches!(outcome, PushOutcome::Pushed { attempts: 2, .. }),
        "{outcome:?}"
    );
    assert_eq!(calls, 2, "the change was re-applied on the new tip");
    assert_eq!(
        remote.log("main"),
        ["Update app to 1.2.0", "teammate change", "initial"]
    );
    assert_eq!(
        remote.show("main", "apps/other.yaml"),
        "teammate: was here\n"
    );
}

#[test]
fn gives_up_after_bounded_races() {
    let (remote, work) = fleet();
    let teammate = remote.clone_to("teammate");
    let repo = Repository::open(&work).expect("open");
    let mut n = 0;
    let err = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        2,
        &mut |d| {
            n += 1;
            std::fs::write(teammate.join("apps/other.yaml"), format!("round {n}\n"))?;
            git(&teammate, &["commit", "-qam", &format!("teammate {n}")]);
            git(&teammate, &["push", "-q", "origin", "HEAD:main"]);
            set_version(d, "9.9.9")
        },
    )
    .expect_err("gives up");
    assert_eq!(err.code(), "push_race_exhausted");
    assert!(err.to_string().contains("nothing was forced"));
    assert_eq!(
        remote.log("main")[0],
        "teammate 2",
        "the teammate's work is intact"
    );
}

#[test]
fn a_race_with_a_teammate_who_made_the_same_change_ends_in_no_commit() {
    let (remote, work) = fleet();
    let teammate = remote.clone_to("teammate");
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
            if calls == 1 {
                // The teammate pushes the very same bump first.
                set_version(&teammate, "1.3.0")?;
                git(&teammate, &["commit", "-qam", "teammate bump"]);
                git(&teammate, &["push", "-q", "origin", "HEAD:main"]);
            }
            set_version(d, "1.3.0")
        },
    )
    .expect("converges");
    assert_eq!(
        outcome,
        PushOutcome::NoChange {
            push_branch: BranchState::IsBase
        }
    );
    assert_eq!(calls, 2, "re-applied on the teammate's tip");
    assert_eq!(remote.log("main"), ["teammate bump", "initial"]);
    assert_eq!(git(&work, &["status", "--porcelain"]).trim(), "");
}
