//! The whole automation with real parts: Debian's docker-registry on loopback, a bare Git
//! remote, Flux CRD files; then the `tagsmith` binary as a user runs it.

use tagsmith::config::RunConfig;
use tagsmith::run::{run, RunContext};

fn run_with(config: &RunConfig) -> Result<tagsmith::run::RunReport, tagsmith::RunError> {
    runtime().block_on(run(&RunContext::new(config.clone())))
}
use tagsmith_testkit::git::{git, BareRemote};
use tagsmith_testkit::registry::LocalRegistry;

fn flux_objects(registry: &str) -> String {
    format!(
        r#"apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: checkout
  namespace: flux-system
spec:
  image: {registry}/team/checkout
  interval: 1h
  insecure: true
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: checkout
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: checkout
  policy:
    semver:
      range: ">=1.0.0 <2.0.0"
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: shop
  namespace: flux-system
spec:
  interval: 10m
  git:
    commit:
      author:
        name: fluxcdbot
        email: bot@example.com
      messageTemplate: "Update {{{{ range .Changed.Changes }}}}{{{{ .NewValue }}}}{{{{ end }}}}"
    push:
      branch: main
  update:
    path: ./apps
    strategy: Setters
"#
    )
}

fn manifest(registry: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: checkout\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {registry}/team/checkout:1.0.0 # {{\"$imagepolicy\": \"flux-system:checkout\"}}\n          args: [\"--x\"]   # untouched\n"
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn one_correct_commit_then_none() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    let tags: Vec<String> = [
        "0.9.0",
        "1.0.0",
        "1.3.0",
        "1.10.1",
        "1.11.0-rc.1",
        "2.0.0",
        "latest",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    registry.seed("team/checkout", &tags);
    let remote = BareRemote::with_files(&[
        ("clusters/flux.yaml", &flux_objects(&registry.host)),
        ("apps/checkout.yaml", &manifest(&registry.host)),
    ]);
    let work = remote.clone_to("work");
    let cache = tempfile::tempdir().expect("tempdir");
    let mut opts = RunConfig::for_root(&work);
    opts.cache_dir = Some(cache.path().to_path_buf());

    // Dry run: a report and a diff, nothing written.
    opts.dry_run = true;
    let report = run_with(&opts).expect("dry run");
    assert_eq!(report.policies[0].latest_tag.as_deref(), Some("1.10.1"));
    let diff = report.automations[0].diff.clone().expect("diff");
    assert!(diff.contains("--- a/apps/checkout.yaml"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(work.join("apps/checkout.yaml")).expect("read"),
        manifest(&registry.host)
    );
    assert_eq!(remote.log("main").len(), 1);

    // The real run: exactly one commit, exactly the marked value changed.
    opts.dry_run = false;
    let report = run_with(&opts).expect("run");
    assert_eq!(report.automations[0].pushed_branch.as_deref(), Some("main"));
    assert_eq!(
        remote.log("main"),
        [
            format!("Update {}/team/checkout:1.10.1", registry.host),
            "initial".to_string()
        ]
    );
    assert_eq!(
        remote.show("main", "apps/checkout.yaml"),
        manifest(&registry.host).replace("checkout:1.0.0", "checkout:1.10.1")
    );
    let changed = git(&remote.path, &["diff", "--name-only", "main~1", "main"]);
    assert_eq!(changed.trim(), "apps/checkout.yaml");

    // Twice: no second commit.
    let report = run_with(&opts).expect("second run");
    assert!(report.automations[0].commit.is_none());
    assert_eq!(remote.log("main").len(), 2);
    assert!(
        report.repositories[0].cached,
        "the second scan within the interval comes from the cache"
    );
}

#[test]
fn a_failing_registry_leaves_a_reported_stale_policy() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    registry.seed("team/checkout", &["1.0.0".to_string(), "1.2.0".to_string()]);
    let host = registry.host.clone();
    let remote = BareRemote::with_files(&[
        (
            "clusters/flux.yaml",
            &flux_objects(&host).replace("interval: 1h", "interval: 1s"),
        ),
        ("apps/checkout.yaml", &manifest(&host)),
    ]);
    let work = remote.clone_to("work");
    let cache = tempfile::tempdir().expect("tempdir");
    let mut opts = RunConfig::for_root(&work);
    opts.cache_dir = Some(cache.path().to_path_buf());
    // A dry run writes no cache: the first, real run fills it.
    run_with(&opts).expect("first scan fills the cache");
    opts.dry_run = true;
    drop(registry); // the registry goes away
    std::thread::sleep(std::time::Duration::from_millis(1100)); // past the 1s interval
    let report = run_with(&opts).expect("runs on the stale cache");
    let repo = &report.repositories[0];
    assert!(repo.stale, "{repo:?}");
    assert!(
        repo.error
            .as_ref()
            .is_some_and(|e| e.message.contains(&host)),
        "{repo:?}"
    );
    assert!(report.policies[0].stale);
    assert_eq!(report.policies[0].latest_tag.as_deref(), Some("1.2.0"));
}

#[test]
fn digest_reflection_writes_the_resolved_digest() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    let digest = registry.seed("team/checkout", &["1.0.0".to_string(), "1.2.0".to_string()]);
    let flux = flux_objects(&registry.host).replace(
        "  policy:\n    semver:",
        "  digestReflectionPolicy: Always\n  policy:\n    semver:",
    );
    assert!(flux.contains("digestReflectionPolicy"), "{flux}");
    let remote = BareRemote::with_files(&[
        ("clusters/flux.yaml", &flux),
        ("apps/checkout.yaml", &manifest(&registry.host)),
    ]);
    let work = remote.clone_to("work");
    let mut opts = RunConfig::for_root(&work);
    opts.no_cache = true;
    opts.dry_run = true;
    let report = run_with(&opts).expect("dry run");
    let expected = format!("{}/team/checkout:1.2.0@{digest}", registry.host);
    let policy = &report.policies[0];
    assert_eq!(policy.error, None, "{policy:?}");
    assert_eq!(policy.latest_image.as_deref(), Some(expected.as_str()));
    let diff = report.automations[0].diff.clone().expect("diff");
    assert!(
        diff.contains(&format!("+          image: {expected} #")),
        "{diff}"
    );
}

#[test]
fn a_config_file_outside_the_tree_drives_the_run() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    registry.seed("team/checkout", &["1.0.0".to_string(), "1.3.0".to_string()]);
    let remote = BareRemote::with_files(&[("apps/checkout.yaml", &manifest(&registry.host))]);
    let work = remote.clone_to("work");
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("flux.yaml");
    std::fs::write(&config, flux_objects(&registry.host)).expect("write config");
    let mut opts = RunConfig::for_root(&work);
    opts.no_cache = true;
    opts.config = Some(config);
    let report = run_with(&opts).expect("run");
    assert!(report.automations[0].commit.is_some(), "{report:?}");
    assert_eq!(
        remote.show("main", "apps/checkout.yaml"),
        manifest(&registry.host).replace("checkout:1.0.0", "checkout:1.3.0")
    );
    assert_eq!(remote.log("main").len(), 2);
}

/// A throwaway GnuPG home with one passphrase-protected secret key; returns (home, armored).
fn gpg_key(passphrase: &str) -> (tempfile::TempDir, String) {
    tagsmith_testkit::tools::gpg_secret_key("Flux Bot <bot@example.com>", passphrase)
}

#[test]
fn signing_key_from_the_secrets_dir_signs_the_commit() {
    if tagsmith_testkit::tools::missing(&["docker-registry", "gpg"]) {
        return;
    }
    let registry = LocalRegistry::start();
    registry.seed("team/checkout", &["1.0.0".to_string(), "1.5.0".to_string()]);
    let flux = flux_objects(&registry.host).replace(
        "    push:\n",
        "      signingKey:\n        secretRef:\n          name: flux-gpg\n    push:\n",
    );
    let remote = BareRemote::with_files(&[
        ("clusters/flux.yaml", &flux),
        ("apps/checkout.yaml", &manifest(&registry.host)),
    ]);
    let work = remote.clone_to("work");
    let (home, armored) = gpg_key("s3cret");
    let secrets = tempfile::tempdir().expect("tempdir");
    let secret = secrets.path().join("flux-system/flux-gpg");
    std::fs::create_dir_all(&secret).expect("mkdir");
    std::fs::write(secret.join("git.asc"), armored).expect("write key");
    std::fs::write(secret.join("passphrase"), "s3cret\n").expect("write passphrase");
    let mut opts = RunConfig::for_root(&work);
    opts.no_cache = true;
    opts.secrets_dir = Some(secrets.path().to_path_buf());
    let report = run_with(&opts).expect("run");
    let commit = report.automations[0].commit.clone().expect("a commit");
    let verify = std::process::Command::new("git")
        .env("GNUPGHOME", home.path())
        .args(["verify-commit", &commit])
        .current_dir(&remote.path)
        .output()
        .expect("git verify-commit");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stderr).contains("Good signature"));

    // Without the secret the run refuses rather than committing unsigned.
    std::fs::remove_file(secret.join("git.asc")).expect("rm");
    let again = BareRemote::with_files(&[
        ("clusters/flux.yaml", &flux),
        ("apps/checkout.yaml", &manifest(&registry.host)),
    ]);
    let mut opts = RunConfig::for_root(again.clone_to("work"));
    opts.no_cache = true;
    opts.secrets_dir = Some(secrets.path().to_path_buf());
    let report = run_with(&opts).expect("the run reports the automation's failure");
    let error = report.automations[0]
        .error
        .clone()
        .expect("no key, no commit");
    assert_eq!(error.code, "secret");
    assert!(
        error
            .message
            .contains("spec.git.commit.signingKey.secretRef"),
        "{error:?}"
    );
    assert!(report.failed());
    assert_eq!(again.log("main").len(), 1);
}
