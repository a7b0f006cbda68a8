//! `tagsmith controller` as replicas run it (separate processes, leader election on a
//! Lease) and `tagsmith install --export` applied to a real kube-apiserver with Flux's CRDs.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tagsmith_testkit::git::{BareRemote, HttpGitServer};
use tagsmith_testkit::kube::KubeApiServer;
use tagsmith_testkit::registry::{free_port, LocalRegistry};

const WAIT: Duration = Duration::from_secs(90);
const GIT_PASSWORD: &str = "s3cr3t-git-password";

fn poll<T>(timeout: Duration, what: &str, mut step: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = step() {
            return done;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One `tagsmith controller` process; killed on drop.
struct Replica {
    child: Child,
    identity: String,
    metrics: u16,
    log: PathBuf,
}

impl Replica {
    fn start(kube: &KubeApiServer, ns: &str, identity: &str, dir: &Path) -> Replica {
        let metrics = free_port();
        let log = dir.join(format!("{identity}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_tagsmith"))
            .args(["controller", "--kubeconfig"])
            .arg(kube.kubeconfig())
            .args(["--namespace", ns, "--leader-elect", "--identity", identity])
            .args(["--leader-election-lease-duration", "4s"])
            .args(["--leader-election-renew-deadline", "3s"])
            .args(["--leader-election-retry-period", "500ms"])
            .args(["--leader-election-namespace", ns])
            .args(["--min-retry-delay", "200ms", "--max-retry-delay", "5s"])
            .arg(format!("--metrics-addr=127.0.0.1:{metrics}"))
            .arg("--health-addr=0")
            .arg("--storage-path")
            .arg(dir.join(format!("{identity}-data")))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Replica {
            child,
            identity: identity.to_string(),
            metrics,
            log,
        }
    }

    fn metrics(&self) -> Option<String> {
        let mut answer = ureq::get(&format!("http://127.0.0.1:{}/metrics", self.metrics))
            .call()
            .ok()?;
        answer.body_mut().read_to_string().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn objects(ns: &str, image: &str, git_url: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: git-auth, namespace: {ns}}}
stringData: {{username: flux, password: {GIT_PASSWORD}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: fleet, namespace: {ns}}}
spec: {{interval: 1m, url: "{git_url}", ref: {{branch: main}}, secretRef: {{name: git-auth}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app, namespace: {ns}}}
spec: {{image: "{image}", interval: 2s, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app, namespace: {ns}}}
spec: {{imageRepositoryRef: {{name: app}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: fleet, namespace: {ns}}}
spec:
  interval: 2s
  sourceRef: {{kind: GitRepository, name: fleet}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit: {{author: {{name: fluxbot, email: fluxbot@example.com}}}}
    push: {{branch: main}}
  update: {{path: ./apps, strategy: Setters}}
"#
    )
}

fn holder(kube: &KubeApiServer, ns: &str) -> Option<String> {
    let (status, lease) = kube.request(
        "GET",
        &format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/tagsmith-controller-leader-election"),
        "",
        None,
    );
    (status == 200)
        .then(|| lease["spec"]["holderIdentity"].as_str().map(str::to_string))
        .flatten()
}

fn reconciled(metrics: &str) -> bool {
    metrics.contains("gotk_reconcile_duration_seconds_count{")
}

#[test]
fn only_the_leader_writes_and_a_replica_takes_over_when_it_dies_without_a_double_commit() {
    let Some(kube) = KubeApiServer::start() else {
        return;
    };
    let ns = "replicas";
    kube.create_namespace(ns);
    let registry = LocalRegistry::start();
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &["1.0.0".into(), "1.0.1".into()]);
    let deploy = format!("image: {image}:1.0.0 # {{\"$imagepolicy\": \"{ns}:app\"}}\n");
    let remote = BareRemote::with_files(&[("apps/deploy.yaml", &deploy)]);
    let http = HttpGitServer::start(remote.base(), "flux", GIT_PASSWORD);
    kube.apply(&objects(ns, &image, &http.url("remote.git")));
    let dir = tempfile::tempdir().unwrap();
    let mut a = Some(Replica::start(&kube, ns, "replica-a", dir.path()));
    let mut b = Some(Replica::start(&kube, ns, "replica-b", dir.path()));

    let leader_id = poll(WAIT, "a lease holder", || holder(&kube, ns));
    poll(WAIT, "the first update on the remote", || {
        remote
            .show("main", "apps/deploy.yaml")
            .contains(":1.0.1")
            .then_some(())
    });
    let (leader, follower) = if leader_id == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let leader_metrics = poll(WAIT, "the leader's metrics", || {
        leader.as_ref().unwrap().metrics()
    });
    assert!(leader_metrics.contains("tagsmith_leader 1") && reconciled(&leader_metrics));
    // The follower is up, idle, and writes nothing.
    let follower_metrics = poll(WAIT, "the follower's metrics", || {
        follower.as_ref().unwrap().metrics()
    });
    assert!(
        follower_metrics.contains("tagsmith_leader 0"),
        "{follower_metrics}"
    );
    assert!(!reconciled(&follower_metrics), "{follower_metrics}");
    let events = kube.get(&format!("/api/v1/namespaces/{ns}/events"));
    let instances: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["reportingInstance"].as_str())
        .collect();
    assert!(!instances.is_empty());
    assert!(instances.iter().all(|i| *i == leader_id), "{instances:?}");

    // The leader dies (no chance to release the Lease); a new tag arrives meanwhile.
    drop(leader.take());
    registry.seed(&format!("{ns}/app"), &["1.0.2".into()]);
    let new_leader = follower.as_ref().unwrap().identity.clone();
    poll(WAIT, "the follower taking the lease", || {
        (holder(&kube, ns).as_deref() == Some(new_leader.as_str())).then_some(())
    });
    poll(WAIT, "the new tag on the remote", || {
        remote
            .show("main", "apps/deploy.yaml")
            .contains(":1.0.2")
            .then_some(())
    });
    let metrics = follower.as_ref().unwrap().metrics().unwrap();
    assert!(
        metrics.contains("tagsmith_leader 1") && reconciled(&metrics),
        "{metrics}"
    );
    // One commit per new tag: the new leader did not commit 1.0.1 again.
    let log = remote.log("main");
    assert_eq!(log.len(), 3, "initial, 1.0.1, 1.0.2: {log:?}");
    // The status follows the push.
    let tip = remote.tip("main").unwrap();
    kube.wait_for(
        &format!("/apis/image.toolkit.fluxcd.io/v1/namespaces/{ns}/imageupdateautomations/fleet"),
        WAIT,
        |a: &Value| a["status"]["lastPushCommit"] == tip.as_str(),
    );

    // SIGTERM: the new leader finishes, releases the Lease and exits 0.
    let follower = follower.as_mut().unwrap();
    let pid = follower.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = poll(WAIT, "the replica exiting", || {
        follower.child.try_wait().unwrap()
    });
    assert!(status.success(), "{status}: {}", follower.log());
    assert_eq!(holder(&kube, ns), None, "released");
    assert!(!follower.log().contains(GIT_PASSWORD));
}

#[test]
fn install_export_applies_to_a_real_api_server() {
    let Some(kube) = KubeApiServer::start() else {
        return;
    };
    kube.create_namespace("flux-system");
    let out = Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(["install", "--export"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let applied = kube.apply(&text);
    let kinds: Vec<&str> = applied.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment"
        ]
    );
    let deployment = applied.last().unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(container["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--leader-elect"));
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);

    // For clusters without Flux: the CRDs too, or where to get them.
    let missing = Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args([
            "install",
            "--export",
            "--with-crds",
            "--crds-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("flux install --export"));
    let crds = tagsmith_testkit::tools::tools_dir().join("crds");
    let out = Command::new(env!("CARGO_BIN_EXE_tagsmith"))
        .args(["install", "--export", "--with-crds", "--crds-dir"])
        .arg(&crds)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.matches("kind: CustomResourceDefinition").count(), 4);
}
