//! The PR-gated path against a real Gitea on loopback: `run --pull-request` pushes to the
//! automation's own branch and opens, updates or closes the pull request from it.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tagsmith::config::RunConfig;
use tagsmith::run::report::PullRequestAction;
use tagsmith::run::{run, RunContext, RunReport};
use tagsmith::Secret;
use tagsmith_testkit::gitea::Gitea;

const PUSH_BRANCH: &str = "tagsmith/images";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=dev", "-c", "user.email=dev@example.com"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A Gitea repository holding the example fleet, whose automation pushes to
/// `tagsmith/images`; returns its `owner/name` and a checkout to run in.
fn fleet(gitea: &Gitea, name: &str, dir: &Path) -> (String, PathBuf) {
    let repo = gitea.create_repo(name);
    let work = dir.join(name);
    git(dir, &["clone", "-q", &gitea.git_url(&repo), name]);
    tagsmith_testkit::fs::copy_tree(&examples().join("gitops"), &work);
    let automation = work.join("clusters/prod/image-automation.yaml");
    let text = std::fs::read_to_string(&automation).unwrap();
    std::fs::write(
        &automation,
        text.replace(
            "    push:\n      branch: main",
            &format!("    push:\n      branch: {PUSH_BRANCH}"),
        ),
    )
    .unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "the fleet"]);
    git(&work, &["push", "-q", "origin", "main"]);
    (repo, work)
}

/// A snapshot where the checkout image also has `extra` tags.
fn snapshot(dir: &Path, extra: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(examples().join("tags.snapshot.yaml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("reg.example.com/team/checkout:") {
            for tag in extra {
                out.push_str(&format!("  - \"{tag}\"\n"));
            }
        }
    }
    let path = dir.join(format!("tags-{}.yaml", extra.len()));
    std::fs::write(&path, out).unwrap();
    path
}

fn config(gitea: &Gitea, work: &Path, snapshot: &Path, token: &str) -> RunConfig {
    let mut config = RunConfig::for_root(work);
    config.snapshot = Some(snapshot.to_path_buf());
    config.pull_request = true;
    config.forge = Some("gitea".into());
    config.forge_url = Some(gitea.url.clone());
    config.forge_token = Some(Secret::new(token));
    config
}

fn run_with(config: RunConfig) -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&RunContext::new(config))).unwrap()
}

fn open_pulls(gitea: &Gitea, repo: &str) -> Vec<Value> {
    let (status, body) = gitea.api("GET", &format!("/repos/{repo}/pulls?state=open"), None);
    assert_eq!(status, 200, "{body}");
    body.as_array().cloned().unwrap_or_default()
}

#[test]
fn a_pull_request_is_opened_updated_kept_single_and_closed_when_bumped_by_hand() {
    let Some(gitea) = Gitea::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (repo, work) = fleet(&gitea, "fleet", dir.path());
    let first = snapshot(dir.path(), &[]);

    // Open: the update goes to the push branch, the pull request explains it.
    let report = run_with(config(&gitea, &work, &first, &gitea.token));
    assert!(!report.failed(), "{:#?}", report.errors());
    let automation = &report.automations[0];
    assert_eq!(automation.pushed_branch.as_deref(), Some(PUSH_BRANCH));
    assert_eq!(
        automation.pull_requests[0].action,
        PullRequestAction::Opened
    );
    let pulls = open_pulls(&gitea, &repo);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"]["ref"], PUSH_BRANCH);
    assert_eq!(pulls[0]["base"]["ref"], "main");
    assert_eq!(pulls[0]["title"], "Update images (flux-system/shop)");
    let body = pulls[0]["body"].as_str().unwrap();
    assert!(body.contains("apps/checkout/deployment.yaml:18"), "{body}");
    assert!(body.contains("1.4.2"), "{body}");
    assert!(body.contains("semver >=1.0.0 <2.0.0"), "{body}");
    // The user's checkout is still on main, untouched.
    assert_eq!(
        git(&work, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    assert_eq!(git(&work, &["status", "--porcelain"]).trim(), "");

    // A second bump rebuilds the branch on main and updates the same pull request.
    let second = snapshot(dir.path(), &["1.5.0"]);
    let report = run_with(config(&gitea, &work, &second, &gitea.token));
    assert_eq!(
        report.automations[0].pull_requests[0].action,
        PullRequestAction::Updated
    );
    let pulls = open_pulls(&gitea, &repo);
    assert_eq!(pulls.len(), 1, "no duplicate");
    assert!(pulls[0]["body"].as_str().unwrap().contains("1.5.0"));
    let branch_log = git(&work, &["ls-remote", "origin", PUSH_BRANCH]);
    assert!(!branch_log.is_empty());

    // A rerun with nothing new changes nothing and opens nothing.
    let report = run_with(config(&gitea, &work, &second, &gitea.token));
    assert_eq!(
        report.automations[0].pull_requests[0].action,
        PullRequestAction::Unchanged
    );
    assert_eq!(open_pulls(&gitea, &repo).len(), 1);

    // Someone makes the bump on main by hand: the pull request is closed with a comment.
    git(&work, &["fetch", "-q", "origin", PUSH_BRANCH]);
    git(&work, &["checkout", "-q", "FETCH_HEAD", "--", "apps"]);
    git(&work, &["commit", "-qm", "bump by hand"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let number = open_pulls(&gitea, &repo)[0]["number"].as_u64().unwrap();
    let report = run_with(config(&gitea, &work, &second, &gitea.token));
    assert!(!report.failed(), "{:#?}", report.errors());
    assert_eq!(
        report.automations[0].pull_requests[0].action,
        PullRequestAction::Closed
    );
    assert!(open_pulls(&gitea, &repo).is_empty());
    let (_, comments) = gitea.api(
        "GET",
        &format!("/repos/{repo}/issues/{number}/comments"),
        None,
    );
    assert!(
        comments.to_string().contains("no longer differs from main"),
        "{comments}"
    );
}

#[test]
fn one_branch_and_pull_request_per_policy() {
    let Some(gitea) = Gitea::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (repo, work) = fleet(&gitea, "per-policy", dir.path());
    let mut config = config(&gitea, &work, &snapshot(dir.path(), &[]), &gitea.token);
    config.branch_per_policy = true;
    let report = run_with(config.clone());
    assert!(!report.failed(), "{:#?}", report.errors());
    let mut heads: Vec<String> = open_pulls(&gitea, &repo)
        .iter()
        .map(|p| p["head"]["ref"].as_str().unwrap().to_string())
        .collect();
    heads.sort();
    assert_eq!(
        heads,
        [
            format!("{PUSH_BRANCH}/flux-system/builds"),
            format!("{PUSH_BRANCH}/flux-system/checkout"),
        ]
    );
    // Each branch holds only its policy's change.
    let builds = git(&work, &["ls-remote", "origin"]);
    assert!(builds.contains("flux-system/builds"), "{builds}");
    git(
        &work,
        &[
            "fetch",
            "-q",
            "origin",
            &format!("{PUSH_BRANCH}/flux-system/builds"),
        ],
    );
    let changed = git(&work, &["diff", "--name-only", "main", "FETCH_HEAD"]);
    assert_eq!(changed.trim(), "apps/builds/helmrelease.yaml");
    // A rerun opens no duplicate.
    let report = run_with(config);
    assert!(report.automations[0]
        .pull_requests
        .iter()
        .all(|p| p.action == PullRequestAction::Unchanged));
    assert_eq!(open_pulls(&gitea, &repo).len(), 2);
}

#[test]
fn forge_errors_are_one_line_naming_forge_repository_and_branch_and_the_push_stays() {
    let Some(gitea) = Gitea::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (repo, work) = fleet(&gitea, "errors", dir.path());
    let tags = snapshot(dir.path(), &[]);

    // 401: a token the forge does not know.
    let report = run_with(config(&gitea, &work, &tags, "not-a-token"));
    let error = report.automations[0].error.clone().unwrap();
    assert_eq!(error.code, "unauthorized");
    assert!(!error.message.contains('\n'));
    for part in ["Gitea", &repo, PUSH_BRANCH, "main", "401"] {
        assert!(error.message.contains(part), "{part}: {}", error.message);
    }
    // The branch was pushed before the forge was asked; it stays for the rerun.
    assert!(!git(&work, &["ls-remote", "origin", PUSH_BRANCH]).is_empty());

    // 404: a user who cannot see the (now private) repository.
    let (status, body) = gitea.api(
        "PATCH",
        &format!("/repos/{repo}"),
        Some(&serde_json::json!({"private": true})),
    );
    assert_eq!(status, 200, "{body}");
    let stranger = gitea.create_user("stranger");
    let report = run_with(config(&gitea, &work, &tags, &stranger));
    let error = report.automations[0].error.clone().unwrap();
    assert_eq!(error.code, "not_found", "{error:?}");
    assert!(error.message.contains(&repo), "{}", error.message);

    // With the right token the rerun converges: one pull request.
    let report = run_with(config(&gitea, &work, &tags, &gitea.token));
    assert!(!report.failed(), "{:#?}", report.errors());
    assert_eq!(open_pulls(&gitea, &repo).len(), 1);
}
