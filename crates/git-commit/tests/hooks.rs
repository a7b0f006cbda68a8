//! A server's hooks run, and a rejection reaches the user with the server's message,
//! whatever the transport: a plain path, `file://`, git daemon, sshd and smart HTTP. A
//! rejection is not a race: no retry, and the local commit is undone.

mod common;

use common::{bot, to_branch, write_app};
use std::path::{Path, PathBuf};
use tagsmith_git_commit::{
    commit_and_push, GitAuth, GitError, KeySource, PushOutcome, PushTarget, Repository, Secret,
};
use tagsmith_testkit::git::{git, BareRemote, GitDaemon, HttpGitServer, SshServer};

const POLICY: &str = "policy: main is protected, open a merge request";

fn remote() -> BareRemote {
    BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")])
}

/// A remote whose pre-receive hook refuses every push with [`POLICY`].
fn rejecting_remote() -> BareRemote {
    let remote = remote();
    remote.reject_pushes(POLICY);
    remote
}

/// Serves `remote` over smart HTTP (user `bot`, password `t0ken-42`) and clones it with
/// those credentials: (the server, the folder holding the checkout, the checkout, its
/// repository).
fn clone_over_http(remote: &BareRemote) -> (HttpGitServer, tempfile::TempDir, PathBuf, Repository) {
    let server = HttpGitServer::start(remote.base(), "bot", "t0ken-42");
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("w");
    let auth = GitAuth::Basic {
        username: "bot".into(),
        password: Secret::new("t0ken-42"),
    };
    let repo = Repository::clone_with_auth(&server.url("remote.git"), &work, Some("main"), auth)
        .expect("clone over http");
    (server, tmp, work, repo)
}

/// Pushes one change to `target` and returns the result and how often the change was
/// applied.
fn push_once(repo: &Repository, target: &PushTarget) -> (Result<PushOutcome, GitError>, u32) {
    let mut calls = 0;
    let result = commit_and_push(repo, &bot(), target, "origin", 3, &mut |d: &Path| {
        calls += 1;
        write_app(d, "image: app:1.1.0\n", "Update app")
    });
    (result, calls)
}

/// The rejection carries the hook's message, is not retried, and leaves the checkout and
/// the remote as they were.
fn assert_rejected_with_message(remote: &BareRemote, repo: &Repository, work: &Path) {
    let head = git(work, &["rev-parse", "HEAD"]);
    let (result, calls) = push_once(repo, &PushTarget::default());
    let err = result.expect_err("the hook refuses");
    assert_eq!(err.code(), "push_rejected", "{err}");
    let text = err.to_string();
    assert!(text.contains("pre-receive hook declined"), "{text}");
    assert!(text.contains(POLICY), "the hook's message: {text}");
    assert_eq!(calls, 1, "a rejection is not a race: no retry");
    assert_eq!(
        git(work, &["rev-parse", "HEAD"]),
        head,
        "the commit was undone"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("app.yaml")).expect("read"),
        "image: app:1.0.0\n"
    );
    assert_eq!(remote.log("main"), ["initial"]);
}

#[test]
fn a_hook_rejection_over_a_plain_path_reports_its_message_without_retry() {
    let remote = rejecting_remote();
    let work = remote.clone_path_to("work");
    let url = git(&work, &["remote", "get-url", "origin"]);
    assert!(url.starts_with('/'), "a plain path: {url}");
    let repo = Repository::open(&work).expect("open");
    assert_rejected_with_message(&remote, &repo, &work);
}

#[test]
fn a_hook_rejection_over_file_url_reports_its_message_without_retry() {
    let remote = rejecting_remote();
    let work = remote.clone_to("work");
    let repo = Repository::open(&work).expect("open");
    assert_rejected_with_message(&remote, &repo, &work);
}

#[test]
fn a_hook_rejection_over_git_daemon_reports_its_message_without_retry() {
    let remote = rejecting_remote();
    let daemon = GitDaemon::start(remote.base());
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("w");
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let repo = Repository::clone(&url, &work, Some("main")).expect("clone");
    assert_rejected_with_message(&remote, &repo, &work);
}

#[test]
fn a_hook_rejection_over_ssh_reports_its_message_without_retry() {
    if tagsmith_testkit::tools::missing(&["sshd"]) {
        return;
    }
    let server = SshServer::start();
    let remote = rejecting_remote();
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("w");
    let auth = GitAuth::SshKey {
        username: SshServer::user(),
        private_key: KeySource::Path(server.user_key()),
        passphrase: None,
        known_hosts: server.known_hosts(),
    };
    let repo = Repository::clone_with_auth(&server.url(&remote.path), &work, Some("main"), auth)
        .expect("clone over ssh");
    assert_rejected_with_message(&remote, &repo, &work);
}

#[test]
fn a_hook_rejection_over_http_reports_its_message_without_retry() {
    if tagsmith_testkit::tools::missing(&["lighttpd"]) {
        return;
    }
    let remote = rejecting_remote();
    let (_server, _tmp, work, repo) = clone_over_http(&remote);
    assert_rejected_with_message(&remote, &repo, &work);
}

#[test]
fn a_hook_rejection_of_a_separate_push_branch_is_reported_too() {
    let remote = rejecting_remote();
    let work = remote.clone_path_to("work");
    let repo = Repository::open(&work).expect("open");
    let target = to_branch("auto");
    let (result, calls) = push_once(&repo, &target);
    let err = result.expect_err("the hook refuses");
    assert_eq!(err.code(), "push_rejected", "{err}");
    assert!(err.to_string().contains(POLICY), "{err}");
    assert_eq!(calls, 1);
    assert!(remote.tip("auto").is_none());
}

#[test]
fn server_hooks_run_for_plain_path_and_file_url_pushes() {
    for file_url in [false, true] {
        let remote = remote();
        let seen = remote.path.join("pushed.log");
        remote.hook("pre-receive", &format!("cat >> '{}'", seen.display()));
        let work = if file_url {
            remote.clone_to("work")
        } else {
            remote.clone_path_to("work")
        };
        let repo = Repository::open(&work).expect("open");
        let (result, _) = push_once(&repo, &PushTarget::default());
        let PushOutcome::Pushed { commit, .. } = result.expect("push") else {
            panic!("expected a push");
        };
        let log = std::fs::read_to_string(&seen).expect("the hook ran");
        assert!(log.contains(&format!("{commit} refs/heads/main")), "{log}");
    }
}

#[test]
fn a_hooks_message_never_carries_the_push_credentials() {
    if tagsmith_testkit::tools::missing(&["lighttpd"]) {
        return;
    }
    let remote = remote();
    remote.reject_pushes("denied for bot:t0ken-42 at http://bot:t0ken-42@127.0.0.1/x");
    let (_server, _tmp, _work, repo) = clone_over_http(&remote);
    let (result, _) = push_once(&repo, &PushTarget::default());
    let text = result.expect_err("refused").to_string();
    assert!(text.contains("denied for bot:<redacted>"), "{text}");
    assert!(!text.contains("t0ken-42"), "{text}");
}

#[test]
fn fetch_and_clone_errors_never_carry_credentials_from_the_url() {
    if tagsmith_testkit::tools::missing(&["lighttpd"]) {
        return;
    }
    let remote = remote();
    let server = HttpGitServer::start(remote.base(), "bot", "t0ken-42");
    let tmp = tempfile::tempdir().expect("tempdir");
    // Credentials in the URL itself (a pasted clone URL), and a repository that is not
    // there.
    let url = format!(
        "http://bot:wr0ng-pass@127.0.0.1:{}/git/missing.git",
        server.port
    );
    let err = Repository::clone(&url, &tmp.path().join("c"), None).expect_err("refused");
    assert!(!err.to_string().contains("wr0ng-pass"), "{err}");
    // The same URL as the remote of a checkout: the push's fetch fails without it.
    let work = remote.clone_to("work");
    git(&work, &["remote", "set-url", "origin", &url]);
    let repo = Repository::open(&work).expect("open");
    let (result, _) = push_once(&repo, &PushTarget::default());
    let text = result.expect_err("refused").to_string();
    assert!(!text.contains("wr0ng-pass"), "{text}");
}
