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

#[test]
fn a_symlinked_folder_is_refused_naming_where_it_points() {
    let dir = tree();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path().join("apps"), &link).expect("symlink");
    let out = tagsmith(&[
        "set",
        link.to_str().expect("utf8"),
        "--policy",
        "flux-system:app=reg.example.com/team/app:1.4.2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: a symlink to {}",
            link.display(),
            dir.path().join("apps").display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apps/app.yaml")).expect("read"),
        FILE
    );
}

#[test]
fn a_ten_thousand_level_file_is_skipped_and_the_rest_is_set() {
    let dir = tree();
    let deep = format!("{}{FILE}", "- ".repeat(10_000));
    std::fs::write(dir.path().join("apps/deep.yaml"), &deep).expect("write");
    let out = tagsmith(&[
        "set",
        path(dir.path()),
        "--policy",
        "flux-system:app=reg.example.com/team/app:1.4.2",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("apps/deep.yaml:1: nested deeper than 512 levels"),
        "{stderr}"
    );
    assert!(std::fs::read_to_string(dir.path().join("apps/app.yaml"))
        .expect("read")
        .contains("app:1.4.2"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("apps/deep.yaml")).expect("read"),
        deep
    );
}

#[test]
fn a_huge_value_is_clipped_in_the_change_line() {
    let dir = tree();
    let huge = "1".repeat(1 << 20);
    std::fs::write(
        dir.path().join("apps/app.yaml"),
        format!("tag: \"{huge}\" # {{\"$imagepolicy\": \"flux-system:app:tag\"}}\n"),
    )
    .expect("write");
    let out = tagsmith(&[
        "set",
        path(dir.path()),
        "--policy",
        "flux-system:app=reg.example.com/team/app:1.4.2",
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{}", stdout.len());
    assert!(stdout.len() < 600, "{} bytes", stdout.len());
    assert!(stdout.contains("(1048576 bytes) -> 1.4.2"), "{stdout}");
}

#[test]
fn a_huge_policy_argument_is_clipped_in_the_error() {
    let dir = tree();
    // One argument can hold at most 128 KiB on Linux.
    let huge = "x".repeat(100_000);
    let out = tagsmith(&["set", path(dir.path()), "--policy", &huge]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.len() < 600, "{} bytes", out.stderr.len());
}
