//! Clone with a branch, tag or commit checked out (shallow over git daemon), and OpenPGP
//! signed commits verified by the real `git verify-commit` with `gpg`.

mod common;

use common::{bot, to_branch, write_app};
use std::process::{Command, Output};
use tagsmith_git_commit::{
    commit_and_push, CheckoutRef, CloneOptions, PushOutcome, PushTarget, Repository, Secret,
    SigningKey,
};
use tagsmith_testkit::git::{git, BareRemote, GitDaemon};
use tagsmith_testkit::tools::require;

/// A remote with history `initial` -> `second` (tagged v1 at `initial`).
fn remote_with_tag() -> (BareRemote, String) {
    let remote = BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")]);
    let first = git(&remote.path, &["rev-parse", "main"]).trim().to_string();
    git(&remote.path, &["tag", "v1", &first]);
    let seed = remote.clone_to("seed2");
    std::fs::write(seed.join("app.yaml"), "image: app:2.0.0\n").expect("write");
    git(&seed, &["commit", "-qam", "second"]);
    git(&seed, &["push", "-q", "origin", "HEAD:main"]);
    (remote, first)
}

#[test]
fn clones_a_tag_or_commit_detached_and_pushes_to_a_new_branch() {
    let (remote, first) = remote_with_tag();
    for (i, reference) in [
        CheckoutRef::Tag("v1".into()),
        CheckoutRef::Commit(first.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        let tmp = tempfile::tempdir().expect("tempdir");
        let options = CloneOptions {
            reference: Some(reference.clone()),
            ..Default::default()
        };
        let repo =
            Repository::clone_with(&remote.url(), &tmp.path().join("w"), &options).expect("clone");
        assert_eq!(repo.head_commit().expect("head"), first, "{reference:?}");
        assert_eq!(
            std::fs::read_to_string(repo.workdir().join("app.yaml")).expect("read"),
            "image: app:1.0.0\n"
        );
        // Detached: pushing needs a push branch, created from the checked-out commit.
        assert!(repo.current_branch().is_err());
        let branch = format!("auto-{i}");
        let target = to_branch(&branch);
        let outcome = commit_and_push(&repo, &bot(), &target, "origin", 1, &mut |d| {
            write_app(d, "image: app:1.1.0\n", "Update app.yaml")
        })
        .expect("push");
        assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
        let parent = git(&remote.path, &["rev-parse", &format!("{branch}^")]);
        assert_eq!(parent.trim(), first);
        assert_eq!(remote.show(&branch, "app.yaml"), "image: app:1.1.0\n");
    }
}

/// A remote whose tags a semver range or a ref name can pick: `v1.2.0` on the first
/// commit of main, `v1.10.0` (annotated) on the second, `v2.0.0` on the second, and
/// `v1.11.0` on a commit that no branch holds (only the tag and a pull-request ref do).
/// Returns the remote and the three commits.
fn remote_with_releases() -> (BareRemote, [String; 3]) {
    let (remote, first) = remote_with_tag();
    let second = git(&remote.path, &["rev-parse", "main"]).trim().to_string();
    git(&remote.path, &["tag", "v1.2.0", &first]);
    git(
        &remote.path,
        &["tag", "-a", "-m", "release", "v1.10.0", &second],
    );
    git(&remote.path, &["tag", "v2.0.0", &second]);
    let seed = remote.clone_to("seed3");
    std::fs::write(
        seed.join("app.yaml"),
        "image: app:1.11.0
",
    )
    .expect("write");
    git(&seed, &["commit", "-qam", "hotfix"]);
    let hotfix = git(&seed, &["rev-parse", "HEAD"]).trim().to_string();
    git(&seed, &["push", "-q", "origin", "HEAD:refs/tags/v1.11.0"]);
    git(&seed, &["push", "-q", "origin", "HEAD:refs/pull/7/head"]);
    (remote, [first, second, hotfix])
}

fn clone_at(remote: &BareRemote, reference: CheckoutRef) -> Result<String, String> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = CloneOptions {
        reference: Some(reference),
        ..Default::default()
    };
    let repo = Repository::clone_with(&remote.url(), &tmp.path().join("w"), &options)
        .map_err(|e| e.to_string())?;
    assert!(repo.current_branch().is_err(), "HEAD is detached");
    Ok(repo.head_commit().expect("head"))
}

#[test]
fn semver_checkout_takes_the_highest_tag_in_range_even_off_every_branch() {
    let (remote, [first, second, hotfix]) = remote_with_releases();
    let at = |range: &str| clone_at(&remote, CheckoutRef::SemVer(range.into()));
    // v1.11.0 sits on no branch: the clone must fetch every tag to see it.
    assert_eq!(at(">=1.0.0 <2.0.0").expect("clone"), hotfix);
    assert_eq!(at("~1.10").expect("clone"), second); // annotated tag, peeled
    assert_eq!(at("~1.2").expect("clone"), first);
    assert_eq!(at(">=2").expect("clone"), second);
    let err = at(">=3").expect_err("no tag in range");
    assert!(err.contains("no tag matches semver >=3"), "{err}");
    let err = at(">=one").expect_err("bad range");
    assert!(err.contains("semver >=one"), "{err}");
}

#[test]
fn ref_name_checkout_fetches_any_ref_and_peels_on_request() {
    let (remote, [first, second, hotfix]) = remote_with_releases();
    let at = |name: &str| clone_at(&remote, CheckoutRef::Name(name.into()));
    assert_eq!(at("refs/pull/7/head").expect("clone"), hotfix);
    assert_eq!(at("refs/heads/main").expect("clone"), second);
    assert_eq!(at("refs/tags/v1.2.0").expect("clone"), first);
    assert_eq!(at("refs/tags/v1.10.0^{}").expect("clone"), second);
    let err = at("refs/pull/8/head").expect_err("no such ref");
    assert!(err.contains("refs/pull/8/head"), "{err}");
}

#[test]
fn unknown_tag_is_a_checkout_error_naming_it() {
    let (remote, _) = remote_with_tag();
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = CloneOptions {
        reference: Some(CheckoutRef::Tag("v9".into())),
        ..Default::default()
    };
    let err = Repository::clone_with(&remote.url(), &tmp.path().join("w"), &options)
        .expect_err("no such tag");
    assert!(err.to_string().contains("tag v9"), "{err}");
}

#[test]
fn shallow_branch_clone_over_git_daemon_fetches_one_commit_and_pushes() {
    let (remote, _) = remote_with_tag();
    let base = remote.path.parent().expect("parent").to_path_buf();
    let daemon = GitDaemon::start(&base);
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let tmp = tempfile::tempdir().expect("tempdir");
    let options = CloneOptions {
        reference: Some(CheckoutRef::Branch("main".into())),
        shallow: true,
        ..Default::default()
    };
    let work = tmp.path().join("w");
    let repo = Repository::clone_with(&url, &work, &options).expect("shallow clone");
    assert_eq!(git(&work, &["rev-list", "--count", "HEAD"]).trim(), "1");
    assert_eq!(
        git(&work, &["rev-parse", "--is-shallow-repository"]).trim(),
        "true"
    );
    let outcome = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        1,
        &mut |d| write_app(d, "image: app:2.1.0\n", "Update app.yaml"),
    )
    .expect("push from a shallow clone");
    assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    assert_eq!(remote.log("main"), ["Update app.yaml", "second", "initial"]);
    // A separate push branch is built from the shallow checkout's objects too.
    let target = to_branch("auto");
    let outcome = commit_and_push(&repo, &bot(), &target, "origin", 1, &mut |d| {
        write_app(d, "image: app:2.2.0\n", "Update app.yaml")
    })
    .expect("push a separate branch from a shallow clone");
    assert!(matches!(outcome, PushOutcome::Pushed { .. }), "{outcome:?}");
    assert_eq!(
        remote.log("auto"),
        ["Update app.yaml", "Update app.yaml", "second", "initial"]
    );
    assert_eq!(remote.show("auto", "app.yaml"), "image: app:2.2.0\n");
}

/// A throwaway GnuPG home with one passphrase-protected secret key; returns (home, armored).
fn gpg_key(passphrase: &str) -> (tempfile::TempDir, String) {
    tagsmith_testkit::tools::gpg_secret_key("Image Bot <bot@example.com>", passphrase)
}

/// `git verify-commit -v` of `commit` in `remote`, with the keys of GnuPG home `home`.
fn verify_commit(home: &tempfile::TempDir, remote: &BareRemote, commit: &str) -> Output {
    Command::new(require("git"))
        .env("GNUPGHOME", home.path())
        .args(["verify-commit", "-v", commit])
        .current_dir(&remote.path)
        .output()
        .expect("git verify-commit")
}

#[test]
fn signed_commits_verify_with_git_and_gpg() {
    if tagsmith_testkit::tools::missing(&["gpg"]) {
        return;
    }
    let (home, armored) = gpg_key("s3cret");
    let remote = BareRemote::with_files(&[("app.yaml", "image: app:1.0.0\n")]);
    let work = remote.clone_to("work");
    let key = SigningKey::from_armored(&armored, Some(Secret::new("s3cret"))).expect("key");
    assert!(!format!("{key:?}").contains("s3cret"));
    let repo = Repository::open(&work).expect("open").with_signing_key(key);
    let outcome = commit_and_push(
        &repo,
        &bot(),
        &PushTarget::default(),
        "origin",
        1,
        &mut |d| write_app(d, "image: app:1.1.0\n", "Update app.yaml"),
    )
    .expect("push");
    let PushOutcome::Pushed { commit, .. } = outcome else {
        panic!("expected a push, got {outcome:?}");
    };
    assert_eq!(git(&remote.path, &["rev-parse", "main"]).trim(), commit);
    let verify = verify_commit(&home, &remote, &commit);
    assert!(
        verify.status.success(),
        "git verify-commit failed: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stderr).contains("Good signature"));
    // The branch moved to the signed commit, and the work tree is clean.
    assert_eq!(git(&work, &["status", "--porcelain"]).trim(), "");

    // Built in a temporary repository for a separate push branch: signed the same way.
    let target = to_branch("auto");
    let outcome = commit_and_push(&repo, &bot(), &target, "origin", 1, &mut |d| {
        write_app(d, "image: app:1.2.0\n", "Update app.yaml")
    })
    .expect("push");
    let PushOutcome::Pushed { commit, .. } = outcome else {
        panic!("expected a push, got {outcome:?}");
    };
    let verify = verify_commit(&home, &remote, &commit);
    assert!(
        verify.status.success(),
        "git verify-commit failed: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn wrong_passphrase_and_garbage_keys_are_refused_up_front() {
    if tagsmith_testkit::tools::missing(&["gpg"]) {
        return;
    }
    let (_home, armored) = gpg_key("right");
    let err =
        SigningKey::from_armored(&armored, Some(Secret::new("not-the-one-9"))).expect_err("wrong");
    assert!(err.to_string().contains("passphrase"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the passphrase is not echoed: {err}"
    );
    let err = SigningKey::from_armored("not a key", None).expect_err("garbage");
    assert!(err.to_string().contains("OpenPGP"), "{err}");
}
