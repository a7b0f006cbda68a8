//! `tagsmith scan` against a real registry and a snapshot.

use std::process::Command;
use tagsmith_testkit::registry::LocalRegistry;

fn tagsmith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(args)
        .output()
        .expect("run tagsmith")
}

#[test]
fn scans_a_real_registry() {
    let registry = LocalRegistry::start();
    registry.seed(
        "team/app",
        &["1.0.0".into(), "1.1.0".into(), "sha256-x.sig".into()],
    );
    let image = format!("{}/team/app", registry.host);
    let out = tagsmith(&["scan", &image, "--insecure"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(lines, ["1.0.0", "1.1.0"]);
    let out = tagsmith(&[
        "scan",
        &image,
        "--insecure",
        "--json",
        "--exclude",
        "^1\\.0",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["tagCount"], 2);
    assert_eq!(v["excludedCount"], 1);
}

#[test]
fn snapshot_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("tags.yaml");
    std::fs::write(&snap, "reg.example.com/app: ['1.0.0', '2.0.0']\n").expect("write");
    let out = tagsmith(&[
        "scan",
        "reg.example.com/app",
        "--snapshot",
        snap.to_str().expect("utf8"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.0.0\n2.0.0\n");
    let out = tagsmith(&[
        "scan",
        "reg.example.com/other",
        "--snapshot",
        snap.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image \"reg.example.com/other\""));
    let out = tagsmith(&["scan", "Bad Ref!", "--insecure"]);
    assert_eq!(out.status.code(), Some(2));
    let out = tagsmith(&["scan", "x/y", "--exclude", "("]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn docker_config_credentials_and_refusals() {
    let registry = LocalRegistry::start_with_auth("robot", "cli-s3cret");
    registry.seed("team/private", &["2.0.0".into(), "2.1.0".into()]);
    let image = format!("{}/team/private", registry.host);
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.json");
    // `auth` is base64("robot:cli-s3cret").
    std::fs::write(
        &good,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "cm9ib3Q6Y2xpLXMzY3JldA=="}}}}}}"#,
            registry.host
        ),
    )
    .expect("write config");
    let out = tagsmith(&[
        "scan",
        &image,
        "--insecure",
        "--json",
        "--docker-config",
        good.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["tagCount"], 2);
    assert_eq!(v["latestTags"], serde_json::json!(["2.1.0", "2.0.0"]));

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        format!(
            r#"{{"auths": {{"{}": {{"username": "robot", "password": "wrong-pass-123"}}}}}}"#,
            registry.host
        ),
    )
    .expect("write config");
    let out = tagsmith(&[
        "scan",
        &image,
        "--insecure",
        "--docker-config",
        bad.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&registry.host), "{stderr}");
    assert!(
        !stderr.contains("wrong-pass-123"),
        "secret leaked: {stderr}"
    );
}
