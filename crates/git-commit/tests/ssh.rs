//! Clone, commit and push over SSH to a real sshd on loopback, with known_hosts checking
//! that fails closed.

mod common;

use common::{bot, to_branch, write_app};
use tagsmith_git_commit::{
    commit_and_push, GitAuth, KeySource, PushOutcome, PushTarget, Repository, Secret,
};
use tagsmith_testkit::git::{BareRemote, SshServer};

fn auth(server: &SshServer, known_hosts: String, in_memory: bool) -> GitAuth {
    let private_key = if in_memory {
        KeySource::InMemory(Secret::new(
            std::fs::read_to_string(server.user_key()).expect("key"),
        ))
    } else {
        KeySource::Path(server.user_key())
    };
    GitAuth::SshKey {
        username: SshServer::user(),
        private_key,
        passphrase: None,
        known_hosts,
    }
}

#[test]
fn push_over_ssh_with_a_key_file_and_in_memory_key() {
    if tagsmith_testkit::tools::missing(&["sshd"]) {
        return;
    }
    let server = SshServer::start();
    let remote = BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")]);
    let url = server.url(&remote.path);
    for (round, in_memory) in [(1, false), (2, true)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::clone_with_auth(
            &url,
            &dir.path().join("w"),
            Some("main"),
            auth(&server, server.known_hosts(), in_memory),
        )
        .expect("clone over ssh");
        let outcome = commit_and_push(
            &repo,
            &bot(),
            &PushTarget::default(),
            "origin",
            2,
            &mut |d| {
                write_app(
                    d,
                    &format!("image: app:1.{round}.0\n"),
                    &format!("ssh round {round}"),
                )
            },
        )
        .expect("push over ssh");
        assert!(matches!(outcome, PushOutcome::Pushed { .. }));
    }
    assert_eq!(
        remote.log("main"),
        ["ssh round 2", "ssh round 1", "initial"]
    );
}

#[test]
fn unknown_host_keys_fail_closed() {
    if tagsmith_testkit::tools::missing(&["sshd"]) {
        return;
    }
    let server = SshServer::start();
    let remote = BareRemote::with_files(&[("app.yaml", "x\n")]);
    let url = server.url(&remote.path);
    let other = SshServer::start(); // a different host key
    for known_hosts in [
        String::new(),
        other
            .known_hosts()
            .replace(&other.port.to_string(), &server.port.to_string()),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Repository::clone_with_auth(
            &url,
            &dir.path().join("w"),
            None,
            auth(&server, known_hosts, false),
        )
        .expect_err("must refuse");
        let text = err.to_string();
        assert!(
            text.contains("known_hosts") || text.contains("unknown remote ssh hostkey"),
            "{text}"
        );
        assert!(!dir.path().join("w/app.yaml").exists());
    }
}

#[test]
fn a_push_branch_is_built_in_a_temporary_repository_over_ssh() {
    if tagsmith_testkit::tools::missing(&["sshd"]) {
        return;
    }
    use tagsmith_testkit::git::git;
    let server = SshServer::start();
    let remote = BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("w");
    let repo = Repository::clone_with_auth(
        &server.url(&remote.path),
        &work,
        Some("main"),
        auth(&server, server.known_hosts(), false),
    )
    .expect("clone over ssh");
    std::fs::write(work.join("app.yaml"), "image: mine\n").expect("write");
    let target = to_branch("auto");
    for version in ["1.1.0", "1.2.0"] {
        let outcome = commit_and_push(&repo, &bot(), &target, "origin", 2, &mut |d| {
            write_app(
                d,
                &format!("image: app:{version}\n"),
                &format!("ssh {version}"),
            )
        })
        .expect("push over ssh");
        assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    }
    // Rebuilt on main: one update commit, the latest.
    assert_eq!(remote.log("auto"), ["ssh 1.2.0", "initial"]);
    assert_eq!(git(&work, &["status", "--porcelain"]).trim(), "M app.yaml");
}
