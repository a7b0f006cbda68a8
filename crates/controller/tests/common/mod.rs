//! The controller's test harness: one real API server (Flux's CRDs) and one loopback
//! registry shared by the tests of a file (each test in its own namespace, with its own
//! controller watching only that namespace), git remotes over smart HTTP with basic auth,
//! and the controller run in-process on its own runtime, stopped on drop.
#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tagsmith_controller::{ControllerOptions, Started};
use tagsmith_testkit::git::{BareRemote, HttpGitServer};
use tagsmith_testkit::kube::KubeApiServer;
use tagsmith_testkit::registry::LocalRegistry;
use tokio_util::sync::CancellationToken;

/// What the tests of one file share.
pub struct Env {
    pub kube: KubeApiServer,
    pub registry: LocalRegistry,
}

static SHARED: Mutex<Weak<Env>> = Mutex::new(Weak::new());

/// The file's API server and registry (started by the first test that asks, stopped when
/// the last one holding them ends); `None` after a `skipped:` line when the tools are
/// missing.
pub fn env() -> Option<Arc<Env>> {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = shared.upgrade() {
        return Some(env);
    }
    let kube = KubeApiServer::start()?;
    let env = Arc::new(Env {
        kube,
        registry: LocalRegistry::start(),
    });
    *shared = Arc::downgrade(&env);
    Some(env)
}

pub const GIT_USER: &str = "flux";
pub const GIT_PASSWORD: &str = "s3cr3t-git-password";

/// A bare remote whose `main` holds `apps/deploy.yaml` with `image` marked for
/// `namespace:policy`, served over smart HTTP with basic auth.
pub struct Remote {
    pub bare: BareRemote,
    pub http: HttpGitServer,
}

impl Remote {
    pub fn new(image: &str, policy: &str) -> Remote {
        let deploy = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {image} # {{\"$imagepolicy\": \"{policy}\"}}\n"
        );
        let bare = BareRemote::with_files(&[("apps/deploy.yaml", &deploy)]);
        let http = HttpGitServer::start(bare.base(), GIT_USER, GIT_PASSWORD);
        Remote { bare, http }
    }

    pub fn url(&self) -> String {
        self.http.url("remote.git")
    }

    pub fn deploy(&self) -> String {
        self.bare.show("main", "apps/deploy.yaml")
    }
}

/// The mission's objects in `ns`: the git Secret, GitRepository, ImageRepository (image
/// `registry/ns/app`, `interval`), ImagePolicy (semver >=1.0.0) and ImageUpdateAutomation.
pub fn mission_yaml(ns: &str, image: &str, interval: &str, git_url: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: git-auth
  namespace: {ns}
stringData:
  username: {GIT_USER}
  password: {GIT_PASSWORD}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: fleet
  namespace: {ns}
spec:
  interval: 1m
  url: {git_url}
  ref:
    branch: main
  secretRef:
    name: git-auth
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app
  namespace: {ns}
spec:
  image: {image}
  interval: {interval}
  insecure: true
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: app
  namespace: {ns}
spec:
  imageRepositoryRef:
    name: app
  policy:
    semver:
      range: '>=1.0.0'
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: fleet
  namespace: {ns}
spec:
  interval: {interval}
  sourceRef:
    kind: GitRepository
    name: fleet
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        name: fluxbot
        email: fluxbot@example.com
    push:
      branch: main
  update:
    path: ./apps
    strategy: Setters
"#
    )
}

pub fn tags(list: &[&str]) -> Vec<String> {
    list.iter().map(|t| t.to_string()).collect()
}

/// Options for a controller watching `ns` only, with servers on free loopback ports, the
/// tag store in `storage`, and quick retries.
pub fn options(kube: &KubeApiServer, ns: &str, storage: &std::path::Path) -> ControllerOptions {
    ControllerOptions {
        kubeconfig: Some(kube.kubeconfig().to_path_buf()),
        namespace: Some(ns.to_string()),
        watch_all_namespaces: false,
        metrics_addr: "127.0.0.1:0".into(),
        health_addr: "127.0.0.1:0".into(),
        storage_path: storage.to_path_buf(),
        min_retry_delay: Duration::from_millis(200),
        max_retry_delay: Duration::from_secs(5),
        requeue_dependency: Duration::from_secs(2),
        leader_election_namespace: Some(ns.to_string()),
        ..ControllerOptions::default()
    }
}

/// A controller running in-process on its own runtime; stopped (gracefully) on drop.
pub struct Running {
    pub started: Option<Started>,
    pub token: CancellationToken,
    pub rt: tokio::runtime::Runtime,
}

impl Running {
    pub fn start(options: ControllerOptions) -> Running {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let token = CancellationToken::new();
        let started = rt
            .block_on(tagsmith_controller::start(options, token.clone()))
            .unwrap_or_else(|e| panic!("controller did not start: {e}"));
        Running {
            started: Some(started),
            token,
            rt,
        }
    }

    /// `GET http://ADDR/PATH` on the metrics or health server.
    pub fn get(&self, metrics: bool, path: &str) -> (u16, String) {
        let started = self.started.as_ref().unwrap();
        let addr = if metrics {
            started.metrics_addr
        } else {
            started.health_addr
        }
        .unwrap();
        let mut answer = ureq::get(&format!("http://{addr}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        let status = answer.status().as_u16();
        (status, answer.body_mut().read_to_string().unwrap())
    }

    /// Stops it and returns how it ended.
    pub fn stop(mut self) -> Result<(), tagsmith_controller::ControllerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), tagsmith_controller::ControllerError> {
        self.token.cancel();
        let Some(started) = self.started.take() else {
            return Ok(());
        };
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(60), started.wait()).await })
            .unwrap_or_else(|_| panic!("the controller did not stop within 60 s"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A fresh, private folder for the tag store.
pub fn storage() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    (dir, path)
}

/// The path of `kind` `name` in `ns`.
pub fn path(kube: &KubeApiServer, kind: &str, ns: &str, name: &str) -> String {
    let api = if kind == "GitRepository" {
        "source.toolkit.fluxcd.io/v1"
    } else {
        "image.toolkit.fluxcd.io/v1"
    };
    format!("{}/{name}", kube.resource_path(api, kind, Some(ns)))
}

/// A condition of an object.
pub fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Whether the object is Ready=True at its current generation.
pub fn is_ready(object: &Value) -> bool {
    condition(object, "Ready").is_some_and(|c| c["status"] == "True")
        && object["status"]["observedGeneration"] == object["metadata"]["generation"]
}

/// Waits (bounded) until `kind` `name` is Ready=True; returns it.
pub fn wait_ready(
    kube: &KubeApiServer,
    kind: &str,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Value {
    kube.wait_for(&path(kube, kind, ns, name), timeout, is_ready)
}

/// Waits (bounded) until `check` holds for `kind` `name`.
pub fn wait_until(
    kube: &KubeApiServer,
    kind: &str,
    ns: &str,
    name: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    kube.wait_for(&path(kube, kind, ns, name), timeout, check)
}

/// Polls `step` every 100 ms until it returns `Some` (at most `timeout`).
pub fn poll<T>(timeout: Duration, what: &str, mut step: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = step() {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Events of namespace `ns` about `name` (any kind).
pub fn events(kube: &KubeApiServer, ns: &str, name: &str) -> Vec<Value> {
    let list = kube.get(&format!("/api/v1/namespaces/{ns}/events"));
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

/// The lines of `flux get ...` output for namespace `ns`.
pub fn flux_lines(kube: &KubeApiServer, args: &[&str], ns: &str) -> Option<Vec<String>> {
    let out = kube.flux(args)?;
    assert!(
        out.status.success(),
        "flux {args:?}: {}{}",
        out.stdout,
        out.stderr
    );
    Some(
        out.stdout
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(ns) || l.starts_with("NAMESPACE"))
            .map(str::to_string)
            .collect(),
    )
}

pub fn merge_annotation(kube: &KubeApiServer, object_path: &str, key: &str, value: &str) {
    kube.merge_patch(
        object_path,
        &json!({"metadata": {"annotations": {key: value}}}),
    );
}
