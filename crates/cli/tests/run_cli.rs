//! `tagsmith run` and `tagsmith check` as a user runs them (offline, with a snapshot).

use std::path::Path;
use std::process::{Command, Output};

fn tagsmith(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tagsmith")
}

fn example() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("repo");
    tagsmith_testkit::fs::copy_tree(&root.join("gitops"), &copy);
    (dir, root.join("tags.snapshot.yaml"))
}

#[test]
fn dry_run_json_report_on_the_example() {
    let (dir, snapshot) = example();
    let repo = dir.path().join("repo");
    let out = tagsmith(
        &[
            "run",
            ".",
            "--dry-run",
            "--json",
            "--snapshot",
            snapshot.to_str().expect("utf8"),
        ],
        &repo,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let policies = report["policies"].as_array().expect("policies");
    let checkout = policies
        .iter()
        .find(|p| p["policy"] == "flux-system:checkout")
        .expect("checkout");
    assert_eq!(checkout["latestTag"], "1.4.2");
    let changes: usize = report["automations"][0]["result"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["objects"][0]["changes"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(changes, 3);
    // Nothing was written.
    let deployment =
        std::fs::read_to_string(repo.join("apps/checkout/deployment.yaml")).expect("read");
    assert!(deployment.contains("checkout:1.2.3"));
}

#[test]
fn an_invalid_policy_fails_alone_with_file_and_line_and_the_rest_runs() {
    let (dir, snapshot) = example();
    let repo = dir.path().join("repo");
    let flux = repo.join("clusters/prod/image-automation.yaml");
    let text = std::fs::read_to_string(&flux).expect("read");
    std::fs::write(&flux, text.replace(">=1.0.0 <2.0.0", ">= 1.0 <")).expect("write");
    let out = tagsmith(
        &[
            "run",
            ".",
            "--dry-run",
            "--json",
            "--snapshot",
            snapshot.to_str().expect("utf8"),
        ],
        &repo,
    );
    // Some object failed (exit 1), not bad command-line input (2).
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("clusters/prod/image-automation.yaml:34: spec.policy.semver.range: invalid semver range"),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["failures"][0]["error"]["code"], "invalid_range");
    assert_eq!(report["failures"][0]["object"], "flux-system:checkout");
    // The other policy was chosen and the automation still updated its markers.
    let builds = report["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["policy"] == "flux-system:builds")
        .expect("builds");
    assert_eq!(builds["latestTag"], "2025.03.01-9d8e7f6");
    assert!(report["automations"][0]["diff"]
        .as_str()
        .is_some_and(|d| d.contains("+      tag: 2025.03.01-9d8e7f6")));
}

#[test]
fn check_gates_on_unmarked_images_and_unknown_policies() {
    let (dir, _) = example();
    let repo = dir.path().join("repo");
    std::fs::write(
        repo.join("apps/checkout/typo.yaml"),
        "image: x # {\"$imagepolicy\": \"flux-system:chekout\"}\n",
    )
    .expect("write");
    let out = tagsmith(&["check", "."], &repo);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("apps/checkout/canary.yaml:13: unmarked_image"),
        "{text}"
    );
    assert!(
        text.contains("apps/checkout/typo.yaml:1: unknown_policy"),
        "{text}"
    );
    std::fs::remove_file(repo.join("apps/checkout/canary.yaml")).expect("rm");
    std::fs::remove_file(repo.join("apps/checkout/typo.yaml")).expect("rm");
    let out = tagsmith(&["check", "."], &repo);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn watch_commits_once_and_stops_cleanly_on_sigterm() {
    let (remote, work) = example_remote();
    let cache = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(["run", ".", "--watch", "--snapshot"])
        .arg(snapshot())
        .arg("--cache-dir")
        .arg(cache.path())
        .current_dir(&work)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tagsmith run --watch");
    // Bounded wait for the first run's commit to reach the remote (not a timing assertion:
    // the loop only bounds how long a broken build can hang the suite).
    let mut pushed = false;
    for _ in 0..600 {
        if remote.log("main").len() == 2 {
            pushed = true;
            break;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("tagsmith exited early: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(pushed, "no commit reached the remote; stderr: {stderr}");
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(stderr.contains("stopping on signal"), "{stderr}");
    // Every automation interval is minutes long: one run, one commit.
    assert_eq!(remote.log("main").len(), 2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pushed "), "{stdout}");
}

/// `tagsmith run --url URL` with tags from `snapshot`, in a scratch folder; must succeed.
fn run_from_url(url: &str, snapshot: &Path) {
    let cache = tempfile::tempdir().expect("tempdir");
    let out = tagsmith(
        &[
            "run",
            "--url",
            url,
            "--snapshot",
            snapshot.to_str().expect("utf8"),
            "--cache-dir",
            cache.path().to_str().expect("utf8"),
        ],
        cache.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn url_without_branch_works_on_the_automations_branch() {
    use tagsmith_testkit::git::git;
    // The CRDs on the default branch (main) point the automation (checkout and push) at
    // `release`, which exists on the remote with the manifests as they were.
    let (remote, work) = example_remote();
    git(&work, &["push", "-q", "origin", "main:release"]);
    point_automation(&work, "branch: release", "release");
    let crd = std::fs::read_to_string(work.join(AUTOMATION)).expect("read");
    assert_eq!(crd.matches("branch: release").count(), 2);
    git(&work, &["commit", "-qam", "automation on release"]);
    git(&work, &["push", "-q", "origin", "main"]);

    run_from_url(&remote.url(), &snapshot());
    // The update landed on release; main has only the CRD edit on top of the initial commit.
    assert_eq!(remote.log("main").len(), 2);
    let release = remote.log("release");
    assert_eq!(release.len(), 2, "{release:?}");
    assert!(release[0].starts_with("Update images"), "{release:?}");
    assert!(remote
        .show("release", "apps/checkout/deployment.yaml")
        .contains("checkout:1.4.2"));
    assert!(remote
        .show("main", "apps/checkout/deployment.yaml")
        .contains("checkout:1.2.3"));
}

#[test]
fn suspended_objects_are_left_alone() {
    let (dir, snapshot) = example();
    let repo = dir.path().join("repo");
    let flux = repo.join("clusters/prod/image-automation.yaml");
    let text = std::fs::read_to_string(&flux).expect("read");
    // Suspend the checkout policy: its markers stay; the builds policy still applies.
    let text = text.replacen(
        "spec:\n  imageRepositoryRef:\n    name: checkout\n",
        "spec:\n  suspend: true\n  imageRepositoryRef:\n    name: checkout\n",
        1,
    );
    std::fs::write(&flux, &text).expect("write");
    let run = |repo: &Path| {
        tagsmith(
            &[
                "run",
                ".",
                "--dry-run",
                "--json",
                "--snapshot",
                snapshot.to_str().expect("utf8"),
            ],
            repo,
        )
    };
    let out = run(&repo);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let checkout = report["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["policy"] == "flux-system:checkout")
        .expect("checkout");
    assert_eq!(checkout["suspended"], true, "{checkout}");
    assert!(checkout["error"].is_null(), "{checkout}");
    let setters: Vec<String> = report["automations"][0]["result"]["files"]
        .as_array()
        .expect("files")
        .iter()
        .flat_map(|f| {
            f["objects"][0]["changes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["setter"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(setters, ["flux-system:builds:tag"], "{report}");

    // Suspend the automation too: nothing changes at all, and the report says why.
    let text = text.replacen(
        "  name: shop\n  namespace: flux-system\nspec:\n",
        "  name: shop\n  namespace: flux-system\nspec:\n  suspend: true\n",
        1,
    );
    std::fs::write(&flux, &text).expect("write");
    let out = run(&repo);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let automation = &report["automations"][0];
    assert_eq!(
        automation["result"]["files"].as_array().map_or(0, Vec::len),
        0
    );
    assert!(automation["notes"][0]
        .as_str()
        .is_some_and(|n| n.contains("spec.suspend")));
}

/// The example as a remote whose `initial` commit is tagged `first_tag`; main then moves
/// on (the checkout app pinned to 1.3.0, tagged `later_tag`) and points the automation at
/// `checkout_ref` (YAML under `ref:`), pushing to `auto`. Runs with `--url` and checks
/// that `auto` is the initial commit plus the update, and main is untouched.
fn assert_url_run_checks_out_initial(first_tag: &str, later_tag: &str, checkout_ref: &str) {
    use tagsmith_testkit::git::git;
    let (remote, work) = example_remote();
    git(&work, &["tag", first_tag]);
    let deployment = work.join("apps/checkout/deployment.yaml");
    let text = std::fs::read_to_string(&deployment).expect("read");
    std::fs::write(
        &deployment,
        text.replace("checkout:1.2.3", "checkout:1.3.0"),
    )
    .expect("write");
    point_automation(&work, checkout_ref, "auto");
    git(&work, &["commit", "-qam", "main moves on"]);
    git(&work, &["tag", later_tag]);
    git(&work, &["push", "-q", "--tags", "origin", "main"]);

    run_from_url(&remote.url(), &snapshot());
    let auto = remote.log("auto");
    assert_eq!(auto.len(), 2, "{checkout_ref}: {auto:?}");
    assert!(auto[0].starts_with("Update images"), "{auto:?}");
    assert_eq!(auto[1], "initial", "{checkout_ref}");
    assert!(remote
        .show("auto", "apps/checkout/deployment.yaml")
        .contains("checkout:1.4.2"));
    assert_eq!(remote.log("main"), ["main moves on", "initial"]);
}

#[test]
fn url_checks_out_the_automations_tag_and_pushes_to_its_branch() {
    assert_url_run_checks_out_initial("v1", "v2", "tag: v1");
}

#[test]
fn url_checks_out_the_highest_tag_in_the_automations_semver_range() {
    // ^1 takes v1.4.0 on the initial commit, not v2.0.0 on main's tip.
    assert_url_run_checks_out_initial("v1.4.0", "v2.0.0", "semver: ^1");
}

#[test]
fn url_checks_out_a_ref_by_name() {
    assert_url_run_checks_out_initial("pinned", "later", "name: refs/tags/pinned");
}

/// The example automation's checkout, as the tests rewrite it.
const CHECKOUT_MAIN: &str = "    checkout:\n      ref:\n        branch: main";

/// Edits the example's automation with `edit`, runs a dry run, and checks that the
/// automation fails alone (exit 1: an object failed) with `file:line: message`, the line
/// being the first that holds `marker`.
fn assert_automation_refused(edit: impl Fn(&str) -> String, marker: &str, message: &str) {
    let (dir, snapshot) = example();
    let repo = dir.path().join("repo");
    let flux = repo.join("clusters/prod/image-automation.yaml");
    let text = edit(&std::fs::read_to_string(&flux).expect("read"));
    std::fs::write(&flux, &text).expect("write");
    let snapshot = snapshot.to_str().expect("utf8");
    let out = tagsmith(&["run", ".", "--dry-run", "--snapshot", snapshot], &repo);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().position(|l| l.contains(marker)).expect("line") + 1;
    assert!(
        stderr.contains(&format!("image-automation.yaml:{line}: {message}")),
        "{stderr}"
    );
}

#[test]
fn an_invalid_checkout_semver_range_is_refused_with_its_line() {
    assert_automation_refused(
        |text| {
            text.replace(
                CHECKOUT_MAIN,
                "    checkout:\n      ref:\n        semver: \">= one\"",
            )
        },
        "semver: \">= one\"",
        "spec.git.checkout.ref.semver: invalid semver range",
    );
}

#[test]
fn a_tag_checkout_without_a_push_branch_is_refused_with_its_line() {
    assert_automation_refused(
        |text| {
            text.replace(CHECKOUT_MAIN, "    checkout:\n      ref:\n        tag: v1")
                .replace("    push:\n      branch: main\n", "")
        },
        "tag: v1",
        "spec.git.checkout.ref.tag: checking out a tag leaves no branch to push to",
    );
}

/// The example's automation, relative to the repository.
const AUTOMATION: &str = "clusters/prod/image-automation.yaml";

/// The examples' tag snapshot.
fn snapshot() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tags.snapshot.yaml")
}

/// Points the example automation in `work` at `checkout_ref` (YAML under `ref:`) and
/// makes it push to `push_branch`.
fn point_automation(work: &Path, checkout_ref: &str, push_branch: &str) {
    let crd = work.join(AUTOMATION);
    let text = std::fs::read_to_string(&crd).expect("read");
    let edited = text
        .replace(
            CHECKOUT_MAIN,
            &format!("    checkout:\n      ref:\n        {checkout_ref}"),
        )
        .replace(
            "    push:\n      branch: main",
            &format!("    push:\n      branch: {push_branch}"),
        );
    std::fs::write(&crd, edited).expect("write");
}

/// The example repository as a bare remote, and a clone of it to run in.
fn example_remote() -> (tagsmith_testkit::git::BareRemote, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gitops");
    let remote = tagsmith_testkit::git::BareRemote::from_tree(&root);
    let work = remote.clone_to("work");
    (remote, work)
}

/// The run succeeded and the remote's main has exactly one update commit on top.
fn assert_pushed_one_update(out: &Output, remote: &tagsmith_testkit::git::BareRemote) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = remote.log("main");
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log[0].starts_with("Update images"), "{log:?}");
}

/// `tagsmith run . --no-cache --snapshot examples/tags.snapshot.yaml EXTRA` in `work`.
fn run_checkout(work: &Path, extra: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(["run", ".", "--no-cache", "--snapshot"])
        .arg(snapshot())
        .args(extra)
        .envs(env.iter().copied())
        .current_dir(work)
        .output()
        .expect("run tagsmith")
}

#[test]
fn pushes_over_ssh_with_credentials_from_the_environment() {
    if tagsmith_testkit::tools::missing(&["sshd"]) {
        return;
    }
    use tagsmith_testkit::git::{git, SshServer};
    let server = SshServer::start();
    let (remote, work) = example_remote();
    git(
        &work,
        &["remote", "set-url", "origin", &server.url(&remote.path)],
    );
    let secrets = tempfile::tempdir().expect("tempdir");
    let known_hosts = secrets.path().join("known_hosts");
    std::fs::write(&known_hosts, server.known_hosts()).expect("write");
    let key = server.user_key();
    // A key without known hosts is bad input, before anything is written.
    let refused = run_checkout(&work, &[], &[("TAGSMITH_GIT_SSH_KEY", key.as_os_str())]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("needs known hosts"));
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
    let out = run_checkout(
        &work,
        &[],
        &[
            ("TAGSMITH_GIT_SSH_KEY", key.as_os_str()),
            ("TAGSMITH_GIT_KNOWN_HOSTS", known_hosts.as_os_str()),
        ],
    );
    assert_pushed_one_update(&out, &remote);
}

#[test]
fn pushes_over_http_with_a_token_from_the_environment() {
    if tagsmith_testkit::tools::missing(&["lighttpd"]) {
        return;
    }
    use tagsmith_testkit::git::{git, HttpGitServer};
    let (remote, work) = example_remote();
    let base = remote.path.parent().expect("parent").to_path_buf();
    let server = HttpGitServer::start(&base, "ci-bot", "t0ken");
    git(
        &work,
        &["remote", "set-url", "origin", &server.url("remote.git")],
    );
    let run = |token: &str| {
        run_checkout(
            &work,
            &[],
            &[
                ("TAGSMITH_GIT_USERNAME", "ci-bot".as_ref()),
                ("TAGSMITH_GIT_TOKEN", token.as_ref()),
            ],
        )
    };
    // A wrong token: the push fails (exit 1), the error does not show the token, the
    // remote is unchanged, and so is the checkout (no unpushed commit, no changed file),
    // so the next run does the whole job.
    let head = git(&work, &["rev-parse", "HEAD"]);
    let refused = run("wr0ng");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!stderr.contains("wr0ng"), "{stderr}");
    assert_eq!(remote.log("main"), ["initial"]);
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
    let out = run("t0ken");
    assert_pushed_one_update(&out, &remote);
}

#[test]
fn a_marked_file_with_uncommitted_edits_is_left_alone() {
    use tagsmith_testkit::git::git;
    let (remote, work) = example_remote();
    // The user edits an unmarked line of a file that carries a marker, and does not commit.
    let deployment = work.join("apps/checkout/deployment.yaml");
    let mine = std::fs::read_to_string(&deployment)
        .expect("read")
        .replace("containerPort: 8080", "containerPort: 9090");
    std::fs::write(&deployment, &mine).expect("write");
    let run = |extra: &[&str]| run_checkout(&work, extra, &[]);
    // Committing and pushing: any tracked change stops the run (a push race resets the
    // branch). Committing only: the marked file's edits would ride along in the commit.
    for (extra, expected) in [
        (
            &[][..],
            "uncommitted changes to apps/checkout/deployment.yaml",
        ),
        (
            &["--no-push"][..],
            "apps/checkout/deployment.yaml has uncommitted changes",
        ),
    ] {
        let out = run(extra);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        // Nothing was written, committed or pushed; the user's edit is intact.
        assert_eq!(std::fs::read_to_string(&deployment).expect("read"), mine);
        assert_eq!(
            git(&work, &["status", "--porcelain"]),
            " M apps/checkout/deployment.yaml\n"
        );
        assert_eq!(git(&work, &["rev-list", "--count", "HEAD"]), "1\n");
        assert_eq!(remote.log("main"), ["initial"]);
    }
}

#[test]
fn unpushed_local_commits_are_not_published() {
    use tagsmith_testkit::git::git;
    let (remote, work) = example_remote();
    std::fs::write(work.join("NOTES.md"), "work in progress\n").expect("write");
    git(&work, &["add", "NOTES.md"]);
    git(
        &work,
        &[
            "-c",
            "user.name=dev",
            "-c",
            "user.email=dev@example.com",
            "commit",
            "-qm",
            "wip",
        ],
    );
    let out = run_checkout(&work, &[], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 commit(s) that origin/main does not"),
        "{stderr}"
    );
    assert_eq!(remote.log("main"), ["initial"]);
    assert_eq!(git(&work, &["status", "--porcelain"]), "");
}

/// The mission's own ImageUpdateAutomation, as written: `image.toolkit.fluxcd.io/v1beta1`
/// with a template over `.Updated.Images`, which Flux rendered up to 2.6.
const MISSION_TEMPLATE: &str = "      messageTemplate: |\n        Auto-update images\n        {{ range .Updated.Images }}\n        - {{.}}\n        {{ end }}\n";

#[test]
fn the_missions_v1beta1_automation_with_updated_images_commits() {
    let (remote, work) = example_remote();
    let crd = work.join(AUTOMATION);
    let text = std::fs::read_to_string(&crd).expect("read");
    let start = text.find("      messageTemplate: |").expect("template");
    let end = text[start..].find("    push:").expect("push") + start;
    let edited = format!("{}{MISSION_TEMPLATE}{}", &text[..start], &text[end..]).replace(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation",
        "apiVersion: image.toolkit.fluxcd.io/v1beta1\nkind: ImageUpdateAutomation",
    );
    assert!(
        edited.contains("v1beta1\nkind: ImageUpdateAutomation"),
        "{edited}"
    );
    std::fs::write(&crd, edited).expect("write");
    tagsmith_testkit::git::git(&work, &["commit", "-qam", "the mission's automation"]);
    tagsmith_testkit::git::git(&work, &["push", "-q", "origin", "main"]);
    let out = run_checkout(&work, &[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Flux up to 2.6 warned nothing; tagsmith points at .Changed once.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("uses .Updated") && stderr.contains(".Changed"),
        "{stderr}"
    );
    let message = tagsmith_testkit::git::git(&remote.path, &["log", "-1", "--format=%B", "main"]);
    assert!(message.starts_with("Auto-update images\n"), "{message}");
    assert!(
        message.contains("- reg.example.com/team/checkout:1.4.2\n"),
        "{message}"
    );
    assert!(
        message.contains("- reg.example.com/team/builds:2025.03.01-9d8e7f6\n"),
        "{message}"
    );
}
