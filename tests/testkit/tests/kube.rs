//! The Kubernetes harness against the real kube-apiserver, Flux's CRDs and Flux's `flux` CLI
//! (built by `make setup-tools`; without them each test prints a `skipped:` line and passes,
//! unless TAGSMITH_REQUIRE_REAL=1). No controller runs: the tests write status the way the
//! tagsmith controller will, and check that Flux's own CLI reads it.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tagsmith_testkit::kube::KubeApiServer;

const REPOSITORY: &str = "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: apps
spec:
  image: 127.0.0.1:5000/podinfo
  interval: 5m
";

const POLICY: &str = "apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: apps
spec:
  imageRepositoryRef:
    name: podinfo
  policy:
    semver:
      range: '>=1.0.0'
";

/// The apiserver holding the ImageRepository and the ImagePolicy `podinfo` in `apps`, and
/// the policy as created; `None` (the test is skipped) without the apiserver.
fn with_policy() -> Option<(KubeApiServer, Value)> {
    let kube = KubeApiServer::start()?;
    kube.create_namespace("apps");
    kube.apply(REPOSITORY);
    let policy = kube.apply(POLICY).remove(0);
    Some((kube, policy))
}

fn ready(status: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": "2026-11-30T12:00:00Z",
    })
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[test]
fn apiserver_becomes_ready_and_serves_the_admin_over_verified_tls() {
    let Some(kube) = KubeApiServer::start() else {
        return;
    };
    let (status, body) = kube.request("GET", "/readyz", "", None);
    assert_eq!((status, body), (200, json!("ok")));
    let version = kube.get("/version");
    assert!(
        version["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.37."),
        "{version}"
    );
    // The admin token is in system:masters: it may list anything.
    let namespaces = kube.get("/api/v1/namespaces");
    assert!(
        namespaces["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == "default"),
        "{namespaces}"
    );
    // A wrong token is refused: authentication is real.
    let (status, _) = kube.request_as("not-a-token", "GET", "/api/v1/namespaces", "", None);
    assert_eq!(status, 401);
    let kubeconfig = std::fs::read_to_string(kube.kubeconfig()).unwrap();
    assert!(kubeconfig.contains(&format!("server: {}", kube.url())));
    assert!(kubeconfig.contains("certificate-authority: "));
    assert!(!kubeconfig.contains("insecure-skip-tls-verify"));
    // A client that does not trust the harness's CA cannot connect: the CA is what verifies.
    assert!(ureq::get(&format!("{}/readyz", kube.url())).call().is_err());
}

#[test]
fn flux_crds_are_established_and_discoverable() {
    let Some(kube) = KubeApiServer::start() else {
        return;
    };
    for (group, plural, kind) in [
        (
            "image.toolkit.fluxcd.io",
            "imagerepositories",
            "ImageRepository",
        ),
        ("image.toolkit.fluxcd.io", "imagepolicies", "ImagePolicy"),
        (
            "image.toolkit.fluxcd.io",
            "imageupdateautomations",
            "ImageUpdateAutomation",
        ),
        (
            "source.toolkit.fluxcd.io",
            "gitrepositories",
            "GitRepository",
        ),
    ] {
        let crd = kube.get(&format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{group}"
        ));
        assert_eq!(condition(&crd, "Established").unwrap()["status"], "True");
        let v1 = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "v1")
            .unwrap_or_else(|| panic!("{plural}.{group} has no v1"));
        assert_eq!(
            (&v1["served"], &v1["storage"]),
            (&json!(true), &json!(true))
        );
        assert_eq!(v1["subresources"]["status"], json!({}), "{plural}: /status");
        assert_eq!(
            kube.resource_path(&format!("{group}/v1"), kind, Some("apps")),
            format!("/apis/{group}/v1/namespaces/apps/{plural}")
        );
    }
}

#[test]
fn image_policy_status_is_written_only_through_the_status_subresource() {
    let Some((kube, created)) = with_policy() else {
        return;
    };
    // The CRD defaults a new object's status to observedGeneration -1: not yet reconciled.
    assert_eq!(created["status"]["observedGeneration"], -1);
    let path = kube.path_of(&created);
    assert_eq!(
        path,
        "/apis/image.toolkit.fluxcd.io/v1/namespaces/apps/imagepolicies/podinfo"
    );
    // A write to the object itself drops status: the subresource is on.
    kube.merge_patch(
        &path,
        &json!({"status": {"latestRef": {"name": "x", "tag": "9.9.9"}}}),
    );
    assert!(kube.get(&path)["status"].get("latestRef").is_none());

    kube.patch_status(
        &path,
        &json!({
            "observedGeneration": 1,
            "latestRef": {"name": "127.0.0.1:5000/podinfo", "tag": "6.5.1"},
            "conditions": [ready("True", "Succeeded", "Latest image tag for 127.0.0.1:5000/podinfo resolved to 6.5.1")],
        }),
    );
    let stored = kube.get(&path);
    assert_eq!(stored["status"]["latestRef"]["tag"], "6.5.1");
    assert_eq!(condition(&stored, "Ready").unwrap()["status"], "True");
    assert_eq!(stored["status"]["observedGeneration"], 1);
}

#[test]
fn flux_get_image_policy_prints_the_latest_tag_and_ready_written_in_status() {
    let Some((kube, policy)) = with_policy() else {
        return;
    };
    let message = "Latest image tag for 127.0.0.1:5000/podinfo resolved to 6.5.1";
    kube.patch_status(
        &kube.path_of(&policy),
        &json!({
            "observedGeneration": 1,
            "latestRef": {"name": "127.0.0.1:5000/podinfo", "tag": "6.5.1"},
            "conditions": [ready("True", "Succeeded", message)],
        }),
    );
    let Some(out) = kube.flux(&["get", "image", "policy", "-A"]) else {
        return;
    };
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let mut lines = out.stdout.lines();
    let header = cells(lines.next().unwrap());
    assert_eq!(
        header,
        ["NAMESPACE", "NAME", "IMAGE", "TAG", "READY", "MESSAGE"],
        "{}",
        out.stdout
    );
    let row = cells(lines.next().unwrap());
    assert_eq!(
        row,
        [
            "apps",
            "podinfo",
            "127.0.0.1:5000/podinfo",
            "6.5.1",
            "True",
            message
        ],
        "{}",
        out.stdout
    );
}

/// `flux reconcile image repository` annotates the object, then waits until
/// `status.lastHandledReconcileAt` differs from the value it saw before and kstatus calls the
/// object Current (observedGeneration == generation, no Reconciling/Stalled True, Ready True).
/// This test plays the controller: it answers the annotation with that status.
#[test]
fn flux_reconcile_image_repository_returns_once_status_handles_the_request() {
    let Some((kube, path, annotated, mut flux)) = pending_reconcile("20s") else {
        return;
    };
    let requested = annotated["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        .as_str()
        .unwrap()
        .to_string();
    // Still waiting: the request is not handled yet.
    assert!(
        flux.try_wait().unwrap().is_none(),
        "flux returned before the status answered"
    );

    kube.patch_status(
        &path,
        &json!({
            "observedGeneration": annotated["metadata"]["generation"],
            "lastHandledReconcileAt": requested,
            "canonicalImageName": "127.0.0.1:5000/podinfo",
            "lastScanResult": {
                "revision": "sha256:0b1f",
                "tagCount": 3,
                "scanTime": "2026-11-30T12:00:00Z",
                "latestTags": ["6.5.1", "6.5.0", "6.4.0"],
            },
            "conditions": [ready("True", "Succeeded", "successful scan: found 3 tags")],
        }),
    );
    let (status, stdout, stderr) = wait_child(&mut flux, Duration::from_secs(30));
    assert!(status.success(), "{stdout}\n{stderr}");
    // Flux's CLI logs to stderr; its success line counts status.lastScanResult.tagCount.
    assert!(stderr.contains("scan fetched 3 tags"), "{stderr}");
}

/// Ready=True and the right generation are not enough: until `lastHandledReconcileAt` changes
/// the CLI takes the status for an older run and waits until its timeout.
#[test]
fn flux_reconcile_image_repository_waits_for_last_handled_reconcile_at() {
    let Some((kube, path, annotated, mut flux)) = pending_reconcile("6s") else {
        return;
    };
    kube.patch_status(
        &path,
        &json!({
            "observedGeneration": annotated["metadata"]["generation"],
            "lastScanResult": {"tagCount": 3, "scanTime": "2026-11-30T12:00:00Z"},
            "conditions": [ready("True", "Succeeded", "successful scan: found 3 tags")],
        }),
    );
    let (status, stdout, stderr) = wait_child(&mut flux, Duration::from_secs(30));
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("context deadline exceeded"), "{stderr}");
    assert!(!stderr.contains("scan fetched"), "{stderr}");
}

/// A failed reconcile answers with Ready=False and Stalled=True: kstatus calls that Failed
/// and the CLI stops at once with the Stalled message (Ready=False alone keeps it waiting
/// until its timeout: kstatus calls that InProgress).
#[test]
fn flux_reconcile_image_repository_fails_when_status_reports_stalled() {
    let Some((kube, path, annotated, mut flux)) = pending_reconcile("20s") else {
        return;
    };
    let message = "image '127.0.0.1:5000/podinfo:6.5.1' should not include a tag; remove ':6.5.1'";
    let mut stalled = ready("True", "ImageURLInvalid", message);
    stalled["type"] = json!("Stalled");
    kube.patch_status(
        &path,
        &json!({
            "observedGeneration": annotated["metadata"]["generation"],
            "lastHandledReconcileAt": annotated["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"],
            "conditions": [ready("False", "ImageURLInvalid", message), stalled],
        }),
    );
    let (status, stdout, stderr) = wait_child(&mut flux, Duration::from_secs(30));
    assert!(!status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(message), "{stderr}");
}

#[test]
fn service_account_user_may_do_what_its_rules_allow_and_nothing_else() {
    let Some(kube) = KubeApiServer::start() else {
        return;
    };
    kube.create_namespace("apps");
    let policy = kube.apply(POLICY).remove(0);
    let path = kube.path_of(&policy);
    let user = kube.service_account_with_rules(
        "apps",
        "reader",
        &json!([{
            "apiGroups": ["image.toolkit.fluxcd.io"],
            "resources": ["imagepolicies"],
            "verbs": ["get", "list", "watch"],
        }]),
    );
    assert_eq!(user.username, "system:serviceaccount:apps:reader");
    let (status, object) = kube.request_as(&user.token, "GET", &path, "", None);
    assert_eq!(status, 200, "{object}");
    let patch = json!({"status": {"latestRef": {"name": "x", "tag": "1.0.0"}}});
    let (status, _) = kube.request_as(
        &user.token,
        "PATCH",
        &format!("{path}/status"),
        "application/merge-patch+json",
        Some(&patch),
    );
    assert_eq!(
        status, 403,
        "status writes need their own rule (imagepolicies/status)"
    );
    let (status, _) = kube.request_as(
        &user.token,
        "GET",
        "/api/v1/namespaces/apps/secrets",
        "",
        None,
    );
    assert_eq!(status, 403);
    // Flux's CLI with the user's kubeconfig reads what the rules allow.
    let Some(out) = kube.flux_as(&user, &["get", "image", "policy", "-n", "apps"]) else {
        return;
    };
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("podinfo"), "{}", out.stdout);
}

/// Where the reconcile tests start: the apiserver holding the ImageRepository `podinfo`, the
/// object's path, the object once `flux reconcile image repository podinfo` has annotated it
/// (asked for a reconcile), and that CLI, still waiting for the status to answer.
type PendingReconcile = (KubeApiServer, String, Value, std::process::Child);

/// Starts a [`PendingReconcile`] whose CLI gives up after `timeout`; `None` (the test is
/// skipped) where the apiserver or the CLI is missing.
fn pending_reconcile(timeout: &str) -> Option<PendingReconcile> {
    let kube = KubeApiServer::start()?;
    kube.create_namespace("apps");
    let repository = kube.apply(REPOSITORY).remove(0);
    let path = kube.path_of(&repository);
    let flux = kube
        .flux_command()?
        .args([
            "reconcile",
            "image",
            "repository",
            "podinfo",
            "-n",
            "apps",
            "--timeout",
            timeout,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let annotated = kube.wait_for(&path, Duration::from_secs(20), |object| {
        object["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].is_string()
    });
    Some((kube, path, annotated, flux))
}

/// The cells of a row of Flux's tables: padded with spaces, separated by tabs, and a row
/// ends with one.
fn cells(line: &str) -> Vec<&str> {
    line.trim_end().split('\t').map(str::trim).collect()
}

/// Waits (bounded) for a spawned command and collects its output.
fn wait_child(
    child: &mut std::process::Child,
    timeout: Duration,
) -> (std::process::ExitStatus, String, String) {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}
