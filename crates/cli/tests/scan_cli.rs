//! `tagsmith scan` against a real registry and a snapshot.

use std::process::Command;
use std::time::Duration;
use tagsmith_testkit::http::{FaultServer, Reply};
use tagsmith_testkit::registry::LocalRegistry;

fn tagsmith(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(args)
        .output()
        .expect("run tagsmith")
}

#[test]
fn scans_a_real_registry() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
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
    // Flux's stored order: descending by string.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2.0.0\n1.0.0\n");
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
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
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

#[test]
fn tags_print_in_flux_stored_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("tags.yaml");
    std::fs::write(
        &snap,
        "reg.example.com/app: ['3.7.2', '10.0.0', 'v3.7.2', '2.2.2']\n",
    )
    .expect("write");
    let snap = snap.to_str().expect("utf8");
    let out = tagsmith(&["scan", "reg.example.com/app", "--snapshot", snap]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "v3.7.2\n3.7.2\n2.2.2\n10.0.0\n"
    );
    let out = tagsmith(&["scan", "reg.example.com/app", "--snapshot", snap, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["tags"],
        serde_json::json!(["v3.7.2", "3.7.2", "2.2.2", "10.0.0"])
    );
}

#[test]
fn scan_timeout_ends_a_trickling_registry_with_a_clear_error() {
    // One byte every 200 ms: the 5 s read timeout never fires; the whole body takes minutes.
    let server = FaultServer::start(20, |path, _| {
        if path == "/v2/" {
            return Reply::json(200, "{}");
        }
        let tags: Vec<String> = (0..60).map(|i| format!("\"1.0.{i}\"")).collect();
        Reply::json(200, &format!("{{\"tags\": [{}]}}", tags.join(",")))
            .trickled(Duration::from_millis(200))
    });
    let image = format!("{}/team/app", server.host);
    let out = tagsmith(&[
        "scan",
        &image,
        "--insecure",
        "--timeout",
        "5",
        "--scan-timeout",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&image), "{stderr}");
    assert!(stderr.contains("scan timeout of 2000 ms"), "{stderr}");
}

#[test]
fn an_absurd_timeout_is_bad_input_not_a_panic() {
    for flag in ["--timeout", "--scan-timeout"] {
        for value in ["18446744073709551615", "0", "86401"] {
            let out = tagsmith(&["scan", "127.0.0.1:1/team/app", "--insecure", flag, value]);
            assert_eq!(out.status.code(), Some(2), "{flag} {value}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(flag) && stderr.contains("1..=86400"),
                "{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn a_malformed_docker_config_never_echoes_the_credential() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.json");
    // The entry should be an object; here it is the bare base64 of "robot:cli-s3cret".
    std::fs::write(
        &config,
        r#"{"auths": {"reg.example.com": "cm9ib3Q6Y2xpLXMzY3JldA=="}}"#,
    )
    .expect("write config");
    let config = config.to_str().expect("utf8");
    for json in [false, true] {
        let mut args = vec![
            "scan",
            "reg.example.com/team/app",
            "--docker-config",
            config,
        ];
        if json {
            args.push("--json");
        }
        let out = tagsmith(&args);
        assert_eq!(out.status.code(), Some(2));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains(config), "{all}");
        assert!(
            all.contains(r#"auths["reg.example.com"] is not a JSON object"#),
            "{all}"
        );
        for leak in ["cm9ib3Q6Y2xpLXMzY3JldA", "cli-s3cret"] {
            assert!(!all.contains(leak), "the credential leaked: {all}");
        }
    }
}

#[test]
fn a_snapshot_alias_bomb_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("bomb.yaml");
    let mut text = String::from("a: &a [l, l, l, l, l, l, l, l, l]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    std::fs::write(&snap, text).expect("write");
    let out = tagsmith(&[
        "scan",
        "reg.example.com/app",
        "--snapshot",
        snap.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bomb.yaml: line 7: aliases copy more than"),
        "{stderr}"
    );
}
