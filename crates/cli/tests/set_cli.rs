//! `tagsmith set` as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

fn tagsmith(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(args)
        .output()
        .expect("run tagsmith")
}

const FILE: &str = "spec:\n  image: reg.example.com/team/app:1.2.3 # {\"$imagepolicy\": \"flux-system:app\"}\n  tag: \"1.2.3\" # {\"$imagepolicy\": \"flux-system:app:tag\"}\n";

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("apps")).expect("mkdir");
    std::fs::write(dir.path().join("apps/app.yaml"), FILE).expect("write");
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().expect("utf8")
}

#[test]
fn writes_and_reports_changes() {
    let dir = tree();
    let out = tagsmith(&[
        "set",
        path(dir.path()),
        "--policy",
        "flux-system:app=reg.example.com/team/app:1.4.2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "apps/app.yaml:2: reg.example.com/team/app:1.2.3 -> reg.example.com/team/app:1.4.2"
        ),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apps/app.yaml")).expect("read"),
        FILE.replace("app:1.2.3", "app:1.4.2")
            .replace("\"1.2.3\"", "\"1.4.2\"")
    );
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let dir = tree();
    let out = tagsmith(&[
        "set",
        path(dir.path()),
        "--dry-run",
        "--policy",
        "flux-system:app=reg.example.com/team/app:1.4.2",
    ]);
    assert!(out.status.success());
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(diff.contains("--- a/apps/app.yaml"), "{diff}");
    assert!(
        diff.contains("+  image: reg.example.com/team/app:1.4.2"),
        "{diff}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apps/app.yaml")).expect("read"),
        FILE
    );
}

#[test]
fn json_result_model_from_a_policies_file() {
    let dir = tree();
    let policies = dir.path().join("policies.json");
    std::fs::write(
        &policies,
        r#"{"flux-system:app": "reg.example.com/team/app:2.0.0"}"#,
    )
    .expect("write");
    let out = tagsmith(&[
        "set",
        path(dir.path()),
        "--policies",
        policies.to_str().expect("utf8"),
        "--json",
        "--dry-run",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let change = &v["files"][0]["objects"][0]["changes"][1];
    assert_eq!(change["newValue"], "2.0.0");
    assert_eq!(change["setter"], "flux-system:app:tag");
    assert_eq!(change["marker"], "tag");
}

#[test]
fn warnings_go_to_stderr_and_exit_zero() {
    let dir = tree();
    let out = tagsmith(&["set", path(dir.path()), "--policy", "other:policy=app:1"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("apps/app.yaml:2: marker names policy \"flux-system:app\""),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2() {
    let dir = tree();
    for args in [
        vec!["set", path(dir.path())],
        vec!["set", path(dir.path()), "--policy", "flux-system:app"],
        vec!["set", path(dir.path()), "--policy", "noslash=app:1"],
        vec!["set", path(dir.path()), "--policy", "ns:app=Not A Ref"],
        vec!["set", "/nonexistent/tree", "--policy", "ns:app=app:1"],
        vec![
            "set",
            path(dir.path()),
            "--policy",
            "ns:app=app:1",
            "--include",
            "a/[",
        ],
    ] {
        let out = tagsmith(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{args:?}"
        );
    }
}

#[test]
fn include_and_exclude_limit_the_files() {
    let dir = tree();
    std::fs::create_dir_all(dir.path().join("infra")).expect("mkdir");
    std::fs::write(dir.path().join("infra/app.yaml"), FILE).expect("write");
    let out = tagsmith(&[
        "set",
        path(dir.path()),
        "--policy",
        "flux-system:app=reg.example.com/team/app:1.4.2",
        "--include",
        "**/*.yaml",
        "--exclude",
        "infra/**",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |rel: &str| std::fs::read_to_string(dir.path().join(rel)).expect("read");
    assert!(read("apps/app.yaml").contains("app:1.4.2"));
    assert_eq!(read("infra/app.yaml"), FILE);
}
