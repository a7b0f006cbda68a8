//! Hostile input, as a careful operator attacked tagsmith (issue 11): each test proves one
//! defence at the command line, as a user meets it. The crate-level tests prove the
//! mechanisms (registry-scan: deadlines and caps; marker-setter: confinement and writes;
//! git-commit: work trees, leases and hooks); docs/security.md maps every case to its
//! tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tagsmith_testkit::git::{git, BareRemote};

fn tagsmith() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tagsmith"));
    // No cache of the developer's leaks into the tests.
    c.env(
        "XDG_CACHE_HOME",
        std::env::temp_dir().join("tagsmith-hostile-cache"),
    );
    c
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    tagsmith()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tagsmith")
}

/// `tagsmith run . --dry-run --no-cache` in `dir`, with the example tag snapshot.
fn dry_run_in(dir: &Path) -> Output {
    run_in(
        dir,
        &[
            "run",
            ".",
            "--dry-run",
            "--no-cache",
            "--snapshot",
            &snapshot(),
        ],
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn snapshot() -> String {
    examples().join("tags.snapshot.yaml").display().to_string()
}

const AUTOMATION: &str = "clusters/prod/image-automation.yaml";

/// The example fleet as a bare remote and a clone to work in.
fn example() -> (BareRemote, PathBuf) {
    let remote = BareRemote::from_tree(&examples().join("gitops"));
    let work = remote.clone_to("work");
    (remote, work)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

/// Waits for a child with a deadline: a hang fails the test instead of the run.
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("still running after {limit:?}: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_push_branch_run_neither_loses_nor_publishes_the_users_work() {
    let (remote, work) = example();
    edit(
        &work.join(AUTOMATION),
        "    push:\n      branch: main",
        "    push:\n      branch: auto",
    );
    git(&work, &["commit", "-qam", "push to auto"]);
    git(&work, &["push", "-q", "origin", "main"]);
    // The user's own work: an unpushed commit holding a secret, and an uncommitted edit.
    std::fs::write(work.join("notes.yaml"), "password: hunter2\n").expect("write");
    git(&work, &["add", "notes.yaml"]);
    git(&work, &["commit", "-qm", "local notes"]);
    let readme = work.join("apps/checkout/deployment.yaml");
    let edited = format!(
        "{}# my edit\n",
        std::fs::read_to_string(&readme).expect("read")
    );
    std::fs::write(&readme, &edited).expect("write");
    let head = git(&work, &["rev-parse", "HEAD"]);

    let out = run_in(
        &work,
        &["run", ".", "--no-cache", "--snapshot", &snapshot()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The work tree, HEAD and branch are as the user left them.
    assert_eq!(std::fs::read_to_string(&readme).expect("read"), edited);
    assert_eq!(git(&work, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git(&work, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    // Only tagsmith's commit was pushed, on the remote's main.
    let auto = remote.log("auto");
    assert_eq!(auto.len(), 3, "{auto:?}");
    assert!(auto[0].starts_with("Update images"));
    assert!(!remote.log("auto").iter().any(|m| m == "local notes"));
    assert!(!remote
        .show("auto", "apps/checkout/deployment.yaml")
        .contains("# my edit"));
}

#[test]
fn an_update_path_symlinked_out_of_the_repository_is_refused_and_nothing_outside_changes() {
    let (remote, work) = example();
    let outside = tempfile::tempdir().expect("tempdir");
    let victim = outside.path().join("deployment.yaml");
    let content = "image: reg.example.com/team/checkout:1.2.3 # {\"$imagepolicy\": \"flux-system:checkout\"}\n";
    std::fs::write(&victim, content).expect("write");
    std::os::unix::fs::symlink(outside.path(), work.join("linked")).expect("symlink");
    edit(&work.join(AUTOMATION), "path: ./apps", "path: ./linked");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "update path through a link"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let tags = snapshot();
    for args in [vec!["run", ".", "--dry-run"], vec!["run", "."]] {
        let mut args = args;
        args.extend(["--no-cache", "--snapshot", &tags]);
        let out = run_in(&work, &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("symlink_outside_root"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), content);
    assert_eq!(remote.log("main").len(), 2, "nothing committed");
}

#[test]
fn an_absolute_update_path_is_refused_before_anything_outside_is_read() {
    let (_remote, work) = example();
    edit(&work.join(AUTOMATION), "path: ./apps", "path: /etc");
    for args in [
        vec![
            "run",
            ".",
            "--dry-run",
            "--no-cache",
            "--snapshot",
            &snapshot(),
        ],
        vec!["check", "."],
    ] {
        let out = run_in(&work, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert!(
            all.contains("spec.update.path") && all.contains("absolute"),
            "{all}"
        );
        assert!(!all.contains("passwd"), "{all}");
    }
}

#[test]
fn an_object_named_like_a_path_writes_nothing_outside_the_cache() {
    let (_remote, work) = example();
    let home = tempfile::tempdir().expect("tempdir");
    let victim = home.path().join("victimhome/.docker");
    std::fs::create_dir_all(&victim).expect("mkdir");
    std::fs::write(victim.join("config.json"), "{\"auths\":{}}").expect("write");
    edit(
        &work.join(AUTOMATION),
        "  name: checkout\n  namespace: flux-system\nspec:\n  image:",
        &format!(
            "  name: /../{}/victimhome/.docker/config\n  namespace: flux-system\nspec:\n  image:",
            home.path().display()
        ),
    );
    let cache = home.path().join("cache");
    let out = run_in(
        &work,
        &[
            "run",
            ".",
            "--dry-run",
            "--cache-dir",
            cache.to_str().expect("utf8"),
            "--snapshot",
            &snapshot(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("metadata.name"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(victim.join("config.json")).expect("read"),
        "{\"auths\":{}}"
    );
    assert!(!cache.exists(), "a dry run writes no cache");
}

#[test]
fn a_secret_reference_into_another_namespace_is_refused() {
    let (_remote, work) = example();
    // The example's checkout repository names secret regcred in flux-system; point it at
    // another namespace's secret the way a hostile pull request would.
    edit(
        &work.join(AUTOMATION),
        "  secretRef:\n    name: regcred",
        "  secretRef:\n    name: ../flux-system/regcred",
    );
    let secrets = tempfile::tempdir().expect("tempdir");
    let leaked = secrets.path().join("flux-system/regcred");
    std::fs::create_dir_all(&leaked).expect("mkdir");
    std::fs::write(
        leaked.join(".dockerconfigjson"),
        "{\"auths\":{\"reg.example.com\":{\"auth\":\"c2VjcmV0OnNlY3JldA==\"}}}",
    )
    .expect("write");
    let out = run_in(
        &work,
        &[
            "run",
            ".",
            "--dry-run",
            "--json",
            "--secrets-dir",
            secrets.path().to_str().expect("utf8"),
            "--snapshot",
            &snapshot(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
    assert!(all.contains("spec.secretRef.name"), "{all}");
    assert!(!all.contains("c2VjcmV0"), "{all}");
}

#[test]
fn yaml_nested_ten_thousand_levels_deep_is_an_error_in_every_command_never_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deep: String = (0..10_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    std::fs::write(
        dir.path().join("deep.yaml"),
        format!("# $imagepolicy\n{deep}"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("flux.yaml"),
        format!("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n{deep}"),
    )
    .expect("write");
    std::fs::write(dir.path().join("tags.yaml"), &deep).expect("write");
    let dir_str = dir.path().to_str().expect("utf8");
    let tags = dir.path().join("tags.yaml");
    let runs: [&[&str]; 4] = [
        &["set", dir_str, "--policy", "ns:app=reg/app:1"],
        &[
            "run",
            dir_str,
            "--dry-run",
            "--no-cache",
            "--snapshot",
            tags.to_str().expect("utf8"),
        ],
        &["check", dir_str],
        &[
            "scan",
            "reg/app",
            "--snapshot",
            tags.to_str().expect("utf8"),
        ],
    ];
    for args in runs {
        let out = run_in(dir.path(), args);
        // A clean exit with a message, not a signal (SIGABRT on a stack overflow).
        assert!(
            out.status.code().is_some(),
            "{args:?} died: {:?}",
            out.status
        );
        assert!(
            !stderr(&out).contains("stack overflow"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn check_neither_blocks_on_a_fifo_nor_reads_dev_zero() {
    let (_remote, work) = example();
    assert!(Command::new("mkfifo")
        .arg(work.join("apps/fifo.yaml"))
        .status()
        .expect("mkfifo")
        .success());
    std::os::unix::fs::symlink("/dev/zero", work.join("apps/zero.yaml")).expect("symlink");
    let child = tagsmith()
        .args(["check", "."])
        .current_dir(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("checked "), "{stdout}");
}

#[test]
fn a_crd_file_with_one_invalid_utf8_byte_is_reported_not_skipped() {
    let (_remote, work) = example();
    let file = work.join(AUTOMATION);
    let mut bytes = std::fs::read(&file).expect("read");
    bytes.extend_from_slice(b"# \xff\n");
    std::fs::write(&file, bytes).expect("write");
    let out = dry_run_in(&work);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not UTF-8"), "{}", stderr(&out));
}

#[test]
fn absurd_durations_and_template_sizes_fail_their_object_without_a_panic() {
    let (_remote, work) = example();
    let flux = work.join(AUTOMATION);
    edit(
        &flux,
        "  interval: 5m\n  secretRef",
        "  interval: 99999999999999999999h\n  secretRef",
    );
    edit(
        &flux,
        "      messageTemplate: |\n",
        "      messageTemplate: |\n        {{ repeat 100000000000000 \"x\" }}\n",
    );
    let out = dry_run_in(&work);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    assert!(err.contains("is not a duration"), "{err}");
    assert!(err.contains("spec.git.commit.messageTemplate"), "{err}");
}

#[test]
fn error_lines_are_bounded_and_carry_no_terminal_escapes() {
    let (_remote, work) = example();
    let huge = format!("\u{1b}[31m{}", "x".repeat(1_000_000));
    edit(
        &work.join(AUTOMATION),
        "  name: builds\n  namespace: flux-system\nspec:\n  image:",
        &format!("  name: {huge}\n  namespace: flux-system\nspec:\n  image:"),
    );
    // A warning through tracing too (an ignored cloud provider), on a non-terminal stderr.
    edit(
        &work.join(AUTOMATION),
        "  image: reg.example.com/team/checkout\n",
        "  image: reg.example.com/team/checkout\n  provider: aws\n",
    );
    let out = dry_run_in(&work);
    let err = stderr(&out);
    assert!(err.contains("spec.provider"), "{err}");
    for line in err.lines() {
        assert!(line.len() < 2_000, "{} bytes", line.len());
        assert!(!line.contains('\u{1b}'), "{line}");
    }
}

#[test]
fn a_failing_run_with_json_still_prints_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_in(dir.path(), &["run", "no-such-folder", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(body["error"]["code"], "config");
}

#[test]
fn tags_that_are_not_utf8_on_stdin_are_bad_input() {
    let mut child = tagsmith()
        .args(["policy", "select", "--semver", "*"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"1.0.0\n\xff\xfe\n")
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let (_remote, work) = example();
    let runs: [&[&str]; 3] = [
        &[
            "run",
            ".",
            "--dry-run",
            "--no-cache",
            "--snapshot",
            &snapshot(),
        ],
        &["check", "."],
        &[
            "scan",
            "reg.example.com/team/checkout",
            "--snapshot",
            &snapshot(),
        ],
    ];
    for args in runs {
        let mut child = tagsmith()
            .args(args)
            .current_dir(&work)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // `| head -0`: the reader goes away before anything is written.
        drop(child.stdout.take());
        let out = wait_bounded(child, Duration::from_secs(60));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1 | 141)),
            "{args:?}: {:?}",
            out.status
        );
    }
}

#[test]
fn sigint_stops_watch_in_a_later_round() {
    let (_remote, work) = example();
    // A short interval: rounds come every second.
    edit(&work.join(AUTOMATION), "  interval: 10m", "  interval: 1s");
    let cache = tempfile::tempdir().expect("tempdir");
    let mut child = tagsmith()
        .args([
            "run",
            ".",
            "--watch",
            "--dry-run",
            "--snapshot",
            &snapshot(),
            "--cache-dir",
        ])
        .arg(cache.path())
        .current_dir(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Let at least two rounds pass, then interrupt.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut all);
        all
    });
    std::thread::sleep(Duration::from_millis(3_500));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let out = wait_bounded(child, Duration::from_secs(30));
    let printed = reader.join().expect("reader");
    assert!(
        printed.matches("automation flux-system:shop").count() >= 2,
        "{printed}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stopping on signal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cache_files_are_private_and_a_dry_run_writes_none() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let (_remote, work) = example();
    let registry = tagsmith_testkit::registry::LocalRegistry::start();
    registry.seed("team/checkout", &["1.0.0".to_string()]);
    let flux = work.join(AUTOMATION);
    let text = std::fs::read_to_string(&flux).expect("read");
    std::fs::write(
        &flux,
        text.replace(
            "reg.example.com/team/checkout",
            &format!("{}/team/checkout", registry.host),
        )
        .replace("  secretRef:\n    name: regcred\n", "  insecure: true\n"),
    )
    .expect("write");
    let cache = tempfile::tempdir().expect("tempdir");
    let folder = cache.path().join("tagsmith");
    let args = |dry: bool| {
        let mut a = vec![
            "run",
            ".",
            "--no-push",
            "--cache-dir",
            folder.to_str().expect("utf8"),
        ];
        if dry {
            a.push("--dry-run");
        }
        a
    };
    run_in(&work, &args(true));
    assert!(!folder.exists(), "a dry run wrote the cache");
    run_in(&work, &args(false));
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&folder), 0o700);
    let entries: Vec<_> = std::fs::read_dir(&folder)
        .expect("read")
        .filter_map(Result::ok)
        .collect();
    assert!(!entries.is_empty());
    for entry in entries {
        assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
    }
}
