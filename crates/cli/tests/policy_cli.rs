//! `tagsmith policy select` as a user runs it: stdin in, one tag or one error line out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tagsmith(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tagsmith");
    // The process may exit before reading (bad flags): a broken pipe is not a failure here.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("tagsmith output")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const TAGS: &str = "1.0.0\nv1.4.2\n2.0.0\n1.5.0-rc.1\n2025.01.02-3f2a1bc\n2025.03.01-aaaaaaa\nlatest\nsha256-1.sig\n";

#[test]
fn semver_prints_the_tag_as_written() {
    let out = tagsmith(&["policy", "select", "--semver", ">=1.0.0 <2.0.0"], TAGS);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "v1.4.2\n");
}

#[test]
fn pattern_extract_alphabetical() {
    let out = tagsmith(
        &[
            "policy",
            "select",
            "--alphabetical",
            "--pattern",
            r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$",
            "--extract",
            "$ts",
        ],
        TAGS,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2025.03.01-aaaaaaa\n");
}

#[test]
fn order_names_are_case_insensitive_and_exclusions_apply() {
    let out = tagsmith(
        &[
            "policy",
            "select",
            "--alphabetical",
            "DESC",
            "--exclude",
            "^[0-9]",
        ],
        TAGS,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "latest\n");
}

#[test]
fn json_explains_the_choice() {
    let out = tagsmith(
        &[
            "policy",
            "select",
            "--semver",
            "^1",
            "--exclude",
            r"\.sig$",
            "--json",
        ],
        TAGS,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["latest"], "v1.4.2");
    assert_eq!(v["counts"]["seen"], 8);
    assert_eq!(v["counts"]["excluded"], 1);
    assert_eq!(v["top"][1]["tag"], "1.0.0");
}

#[test]
fn numerical_fails_on_one_bad_tag_unless_skipping() {
    let out = tagsmith(&["policy", "select", "--numerical"], "3\n20\nlatest\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"latest\" is not a number"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1);
    let out = tagsmith(
        &["policy", "select", "--numerical", "--skip-non-numeric"],
        "3\n20\nlatest\n",
    );
    assert_eq!(stdout(&out), "20\n");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        &["policy", "select", "--semver", ">=1.0 <"][..],
        &["policy", "select", "--alphabetical", "sideways"][..],
        &["policy", "select", "--semver", "*", "--pattern", "("][..],
        &["policy", "select", "--semver", "*", "--exclude", "(["][..],
    ] {
        let out = tagsmith(args, TAGS);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("tagsmith: error: invalid"), "{err}");
    }
}

#[test]
fn no_match_and_empty_input_fail_clearly() {
    let out = tagsmith(&["policy", "select", "--semver", ">=9.0.0"], TAGS);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no tag matches semver range \">=9.0.0\""));
    let out = tagsmith(&["policy", "select", "--semver", "*"], "\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("tag list is empty"));
}

#[test]
fn exactly_one_policy_is_required() {
    let out = tagsmith(&["policy", "select"], TAGS);
    assert_eq!(out.status.code(), Some(2));
    let out = tagsmith(&["policy", "select", "--semver", "*", "--numerical"], TAGS);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn tags_file_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tags.txt");
    std::fs::write(&file, "0.1.0\n0.2.0\n").expect("write");
    let out = tagsmith(
        &[
            "policy",
            "select",
            "--semver",
            "*",
            "--tags-file",
            file.to_str().expect("utf8"),
        ],
        "",
    );
    assert_eq!(stdout(&out), "0.2.0\n");
    let out = tagsmith(
        &[
            "policy",
            "select",
            "--semver",
            "*",
            "--tags-file",
            "/nonexistent/tags",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/tags"));
}
