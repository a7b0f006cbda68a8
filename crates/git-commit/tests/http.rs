//! Clone and push over Git's smart HTTP protocol with basic auth, against a real server on
//! loopback (lighttpd + git http-backend), as a CI token pushes to a Git host.

mod common;

use common::{bot, to_branch, write_app};
use std::path::PathBuf;
use tagsmith_git_commit::{
    commit_and_push, ApplyOutcome, GitAuth, PushOutcome, PushTarget, Repository, Secret,
};
use tagsmith_testkit::git::{BareRemote, HttpGitServer};

fn basic(password: &str) -> GitAuth {
    GitAuth::Basic {
        username: "bot".into(),
        password: Secret::new(password),
    }
}

#[test]
fn push_over_http_with_basic_auth() {
    if tagsmith_testkit::tools::missing(&["lighttpd"]) {
        return;
    }
    let remote = BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")]);
    let base = remote.path.parent().expect("parent").to_path_buf();
    let server = HttpGitServer::start(&base, "bot", "t0ken");
    let url = server.url("remote.git");

    // Without credentials, or with wrong ones, the server refuses, and the error says so.
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, auth) in [GitAuth::None, basic("wrong")].into_iter().enumerate() {
        let err = Repository::clone_with_auth(
            &url,
            &dir.path().join(format!("no{i}")),
            Some("main"),
            auth,
        )
        .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("clon") && !text.contains("wrong"), "{text}");
    }

    let repo =
        Repository::clone_with_auth(&url, &dir.path().join("w"), Some("main"), basic("t0ken"))
            .expect("clone over http");
    let outcome = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        2,
        &mut |d| write_app(d, "image: app:1.1.0\n", "over http"),
    )
    .expect("push over http");
    assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    assert_eq!(remote.log("main"), ["over http", "initial"]);
    assert_eq!(remote.show("main", "app.yaml"), "image: app:1.1.0\n");

    // A push that fails for another reason than a race (here: a revoked token) undoes the
    // local commit and restores the changed file, leaving everything else as it was.
    let work = dir.path().join("w");
    std::fs::write(work.join("notes.txt"), "mine\n").expect("write");
    let head = repo.head_commit().expect("head");
    let revoked = Repository::open(&work)
        .expect("open")
        .with_auth(basic("revoked"));
    let err = commit_and_push(
        &revoked,
        &bot(),
        &PushTarget::default(),
        "origin",
        2,
        &mut |d| {
            std::fs::write(d.join("app.yaml"), "image: app:1.2.0\n")?;
            Ok(ApplyOutcome {
                changed_files: vec![PathBuf::from("./app.yaml")],
                message: "never lands".into(),
            })
        },
    )
    .expect_err("refused");
    assert!(!err.to_string().contains("revoked"), "{err}");
    assert_eq!(revoked.head_commit().expect("head"), head);
    assert_eq!(
        std::fs::read_to_string(work.join("app.yaml")).expect("read"),
        "image: app:1.1.0\n"
    );
    assert_eq!(
        std::fs::read_to_string(work.join("notes.txt")).expect("read"),
        "mine\n"
    );
    assert_eq!(remote.log("main"), ["over http", "initial"]);
}

#[test]
fn a_push_branch_is_built_in_a_temporary_repository_over_http() {
    if tagsmith_testkit::tools::missing(&["lighttpd"]) {
        return;
    }
    let remote = BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")]);
    let base = remote.path.parent().expect("parent").to_path_buf();
    let server = HttpGitServer::start(&base, "bot", "t0ken");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = Repository::clone_with_auth(
        &server.url("remote.git"),
        &dir.path().join("w"),
        Some("main"),
        basic("t0ken"),
    )
    .expect("clone over http");
    let target = to_branch("auto");
    for version in ["1.1.0", "1.2.0"] {
        let outcome = commit_and_push(&repo, &bot(), &target, "origin", 2, &mut |d| {
            write_app(
                d,
                &format!("image: app:{version}\n"),
                &format!("http {version}"),
            )
        })
        .expect("push over http");
        assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    }
    assert_eq!(remote.log("auto"), ["http 1.2.0", "initial"]);
    // With the token revoked, the lease's fetch fails and says so without the token.
    let revoked = Repository::open(&dir.path().join("w"))
        .expect("open")
        .with_auth(basic("revoked-t0ken"));
    let err = commit_and_push(&revoked, &bot(), &target, "origin", 2, &mut |d| {
        write_app(d, "image: app:1.3.0\n", "never")
    })
    .expect_err("refused");
    assert!(!err.to_string().contains("revoked-t0ken"), "{err}");
    assert_eq!(remote.log("auto"), ["http 1.2.0", "initial"]);
}
