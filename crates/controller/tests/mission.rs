//! The controller against a real kube-apiserver with Flux's CRDs, the loopback registry, a
//! git remote over smart HTTP with basic auth, and Flux's own `flux` CLI reading the result.
//! Each test has its namespace and its controller; the API server and registry are shared.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn the_missions_objects_reach_ready_with_fluxs_status_and_a_commit_on_the_remote() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "mission";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0", "1.0.1", "0.9.0"]));
    let remote = Remote::new(&format!("{image}:1.0.0"), &format!("{ns}:app"));
    kube.apply(&mission_yaml(ns, &image, "1m", &remote.url()));
    let (_dir, store) = storage();
    let controller = Running::start(options(kube, ns, &store));

    let repo = wait_ready(kube, "ImageRepository", ns, "app", WAIT);
    let status = &repo["status"];
    assert_eq!(status["canonicalImageName"], image.as_str());
    assert_eq!(status["lastScanResult"]["tagCount"], 3);
    assert_eq!(
        status["lastScanResult"]["latestTags"],
        serde_json::json!(["1.0.1", "1.0.0", "0.9.0"])
    );
    assert_eq!(
        status["observedExclusionList"],
        serde_json::json!(["^.*\\.sig$"])
    );
    let revision = status["lastScanResult"]["revision"].as_str().unwrap();
    let ready = condition(&repo, "Ready").unwrap();
    assert_eq!(ready["reason"], "Succeeded");
    assert_eq!(
        ready["message"],
        format!("successful scan: found 3 tags with checksum {revision}").as_str()
    );
    assert!(condition(&repo, "Reconciling").is_none(), "{repo}");

    let policy = wait_until(kube, "ImagePolicy", ns, "app", WAIT, |p| {
        is_ready(p) && p["status"]["latestRef"]["tag"] == "1.0.1"
    });
    assert_eq!(
        policy["status"]["latestRef"],
        serde_json::json!({"name": image, "tag": "1.0.1"})
    );
    assert_eq!(
        condition(&policy, "Ready").unwrap()["message"],
        format!("Latest image tag for {image} resolved to 1.0.1").as_str()
    );

    let automation = wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, |a| {
        is_ready(a) && a["status"]["lastPushCommit"].is_string()
    });
    let status = &automation["status"];
    let commit = status["lastPushCommit"].as_str().unwrap();
    assert_eq!(remote.bare.tip("main").as_deref(), Some(commit));
    assert!(
        remote.deploy().contains(&format!(
            "image: {image}:1.0.1 # {{\"$imagepolicy\": \"{ns}:app\"}}"
        )),
        "{}",
        remote.deploy()
    );
    assert_eq!(
        status["observedSourceRevision"],
        format!("main@sha1:{commit}").as_str()
    );
    assert_eq!(
        status["observedPolicies"],
        serde_json::json!({"app": {"name": image, "tag": "1.0.1"}})
    );
    assert!(status["lastPushTime"].is_string() && status["lastAutomationRunTime"].is_string());
    assert_eq!(
        condition(&automation, "Ready").unwrap()["message"],
        "repository up-to-date"
    );
    // One commit by the automation, with Flux's default message.
    let log = remote.bare.log("main");
    assert_eq!(log.len(), 2, "{log:?}");

    // Events as Flux emits them: about each object, from Flux's controller names.
    let policy_events = events(kube, ns, "app");
    let resolved = policy_events
        .iter()
        .find(|e| e["involvedObject"]["kind"] == "ImagePolicy" && e["reason"] == "Succeeded")
        .unwrap_or_else(|| panic!("no ImagePolicy event: {policy_events:?}"));
    assert_eq!(resolved["type"], "Normal");
    assert_eq!(
        resolved["source"]["component"],
        "image-reflector-controller"
    );
    assert_eq!(
        resolved["message"],
        format!("Latest image tag for {image} resolved to 1.0.1").as_str()
    );
    let pushed = events(kube, ns, "fleet");
    assert!(
        pushed.iter().any(|e| e["reason"] == "Succeeded"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(&format!(
                    "pushed commit '{}' to branch 'main'\n",
                    &commit[..7]
                ))),
        "{pushed:?}"
    );
    // No credential anywhere in what was written.
    let written = format!("{repo}{policy}{automation}{policy_events:?}{pushed:?}");
    assert!(!written.contains(GIT_PASSWORD));

    // Flux's own CLI reads tagsmith's status.
    let Some(lines) = flux_lines(kube, &["get", "image", "repository", "-A"], ns) else {
        return;
    };
    assert!(
        lines[0].contains("LAST SCAN") && lines[0].contains("SUSPENDED"),
        "{lines:?}"
    );
    let row = &lines[1];
    assert!(
        row.contains("app") && row.contains("False") && row.contains("True"),
        "{row}"
    );
    assert!(row.contains("successful scan: found 3 tags"), "{row}");
    let lines = flux_lines(kube, &["get", "image", "policy", "-A"], ns).unwrap();
    assert!(
        lines[1].contains(&image) && lines[1].contains("1.0.1"),
        "{lines:?}"
    );
    assert!(lines[1].contains("True"), "{lines:?}");
    let lines = flux_lines(kube, &["get", "image", "update", "-A"], ns).unwrap();
    assert!(
        lines[1].contains("fleet") && lines[1].contains("repository up-to-date"),
        "{lines:?}"
    );

    // Metrics and probes.
    let (status, body) = controller.get(true, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains(&format!(
        "gotk_reconcile_condition{{kind=\"ImagePolicy\",name=\"app\",namespace=\"{ns}\",status=\"True\",type=\"Ready\"}} 1"
    )), "{body}");
    assert!(body.contains("gotk_reconcile_duration_seconds_count{kind=\"ImageRepository\""));
    assert!(
        body.contains(&format!(
            "tagsmith_image_policy_scan_stale{{name=\"app\",namespace=\"{ns}\"}} 0"
        )),
        "{body}"
    );
    assert!(body.contains("tagsmith_leader 1"));
    assert_eq!(controller.get(false, "/healthz"), (200, "ok".into()));
    assert_eq!(controller.get(false, "/readyz").0, 200);
    controller.stop().unwrap();
}

#[test]
fn a_new_tag_reaches_a_commit_on_the_remote_by_the_interval_alone() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "interval";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0"]));
    let remote = Remote::new(&format!("{image}:1.0.0"), &format!("{ns}:app"));
    kube.apply(&mission_yaml(ns, &image, "3s", &remote.url()));
    let (_dir, store) = storage();
    let _controller = Running::start(options(kube, ns, &store));
    wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, is_ready);
    assert_eq!(remote.bare.log("main").len(), 1, "1.0.0 is already there");

    // Nothing but the interval: no annotation, no change to any object.
    registry.seed(&format!("{ns}/app"), &tags(&["1.1.0"]));
    let started = std::time::Instant::now();
    poll(WAIT, "the new tag on the remote", || {
        remote
            .deploy()
            .contains(&format!("{image}:1.1.0"))
            .then_some(())
    });
    eprintln!(
        "new tag committed {:?} after it was pushed (interval 3s)",
        started.elapsed()
    );
    let log = remote.bare.log("main");
    assert_eq!(log.len(), 2, "exactly one commit: {log:?}");
    let automation = wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, |a| {
        a["status"]["observedPolicies"]["app"]["tag"] == "1.1.0"
    });
    assert_eq!(
        automation["status"]["lastPushCommit"].as_str(),
        remote.bare.tip("main").as_deref()
    );
}

#[test]
fn flux_reconcile_triggers_each_kind_at_once_and_returns_when_handled() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "requested";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0", "1.2.0"]));
    let remote = Remote::new(&format!("{image}:1.0.0"), &format!("{ns}:app"));
    // An hour: only the annotation can make the controller look again within the test.
    kube.apply(&mission_yaml(ns, &image, "1h", &remote.url()));
    let (_dir, store) = storage();
    let _controller = Running::start(options(kube, ns, &store));
    wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, |a| {
        is_ready(a) && a["status"]["lastPushCommit"].is_string()
    });

    registry.seed(&format!("{ns}/app"), &tags(&["2.0.0"]));
    let Some(out) = kube.flux(&[
        "reconcile",
        "image",
        "repository",
        "app",
        "-n",
        ns,
        "--timeout",
        "60s",
    ]) else {
        return;
    };
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("scan fetched 3 tags"), "{}", out.stderr);
    let repo = kube.get(&path(kube, "ImageRepository", ns, "app"));
    let requested = repo["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].clone();
    assert_eq!(repo["status"]["lastHandledReconcileAt"], requested);

    // The policy follows the repository's new tags; `flux reconcile` of it returns too.
    let out = kube
        .flux(&[
            "reconcile",
            "image",
            "policy",
            "app",
            "-n",
            ns,
            "--timeout",
            "60s",
        ])
        .unwrap();
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!("selected ref {image}:2.0.0")),
        "{}",
        out.stderr
    );
    let out = kube
        .flux(&[
            "reconcile",
            "image",
            "update",
            "fleet",
            "-n",
            ns,
            "--timeout",
            "60s",
        ])
        .unwrap();
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("repository up-to-date"),
        "{}",
        out.stderr
    );
    assert!(
        remote.deploy().contains(&format!("{image}:2.0.0")),
        "{}",
        remote.deploy()
    );
}

#[test]
fn a_bad_object_fails_alone_with_fluxs_reason_while_the_others_succeed() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "alone";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0", "1.0.1"]));
    let remote = Remote::new(&format!("{image}:1.0.0"), &format!("{ns}:app"));
    kube.apply(&mission_yaml(ns, &image, "1m", &remote.url()));
    let bad = format!(
        r#"apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: scheme, namespace: {ns}}}
spec: {{image: "https://{host}/{ns}/app", interval: 1m}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: closed, namespace: {ns}}}
spec: {{image: "127.0.0.1:1/{ns}/nothing", interval: 1m, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: nosecret, namespace: {ns}}}
spec: {{image: "{image}", interval: 1m, insecure: true, secretRef: {{name: absent}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: orphan, namespace: {ns}}}
spec: {{imageRepositoryRef: {{name: missing}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: nomatch, namespace: {ns}}}
spec: {{imageRepositoryRef: {{name: app}}, policy: {{semver: {{range: ">=9.0.0"}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: stuck, namespace: {ns}}}
spec: {{imageRepositoryRef: {{name: closed}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: nosource, namespace: {ns}}}
spec:
  interval: 1m
  sourceRef: {{kind: GitRepository, name: gone}}
  git: {{commit: {{author: {{name: bot, email: bot@example.com}}}}}}
  update: {{path: ./, strategy: Setters}}
"#,
        host = registry.host
    );
    kube.apply(&bad);
    let (_dir, store) = storage();
    let controller = Running::start(options(kube, ns, &store));

    // The good objects go all the way.
    wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, |a| {
        is_ready(a) && a["status"]["lastPushCommit"].is_string()
    });
    assert!(remote.deploy().contains(&format!("{image}:1.0.1")));

    let failed = |kind: &str, name: &str, reason: &str| {
        wait_until(kube, kind, ns, name, WAIT, |o| {
            condition(o, "Ready").is_some_and(|c| c["status"] == "False" && c["reason"] == reason)
        })
    };
    let scheme = failed("ImageRepository", "scheme", "ImageURLInvalid");
    assert_eq!(condition(&scheme, "Stalled").unwrap()["status"], "True");
    assert_eq!(
        condition(&scheme, "Ready").unwrap()["message"],
        format!(
            "image 'https://{}/{ns}/app' should not include URL scheme; remove 'https://'",
            registry.host
        )
        .as_str()
    );
    let closed = failed("ImageRepository", "closed", "ReadOperationFailed");
    let message = condition(&closed, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.starts_with("scan failed: "), "{message}");
    assert_eq!(
        condition(&closed, "Reconciling").unwrap()["reason"],
        "ProgressingWithRetry"
    );
    let nosecret = failed("ImageRepository", "nosecret", "AuthenticationFailed");
    assert_eq!(
        condition(&nosecret, "Ready").unwrap()["message"],
        "failed to configure authentication options: secrets \"absent\" not found"
    );
    let orphan = failed("ImagePolicy", "orphan", "DependencyNotReady");
    assert!(
        condition(&orphan, "Ready").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("referenced ImageRepository does not exist: imagerepositories.image.toolkit.fluxcd.io \"missing\" not found"),
        "{orphan}"
    );
    let nomatch = failed("ImagePolicy", "nomatch", "Failure");
    assert!(nomatch["status"].get("latestRef").is_none(), "{nomatch}");
    failed("ImagePolicy", "stuck", "DependencyNotReady");
    let nosource = failed("ImageUpdateAutomation", "nosource", "SourceManagerFailed");
    assert!(
        condition(&nosource, "Ready").unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "failed configuring source manager: referenced git repository does not exist"
            ),
        "{nosource}"
    );
    // Warning events for the failures.
    let warnings = events(kube, ns, "closed");
    assert!(
        warnings
            .iter()
            .any(|e| e["type"] == "Warning" && e["reason"] == "ReadOperationFailed"),
        "{warnings:?}"
    );

    // A stalled object fails `flux reconcile` at once with its message.
    if let Some(out) = kube.flux(&[
        "reconcile",
        "image",
        "repository",
        "scheme",
        "-n",
        ns,
        "--timeout",
        "60s",
    ]) {
        assert!(!out.status.success());
        assert!(
            out.stderr.contains("should not include URL scheme"),
            "{}",
            out.stderr
        );
    }

    // Stuck image policies show in the metrics: `stuck`'s repository never scanned.
    let (_, body) = controller.get(true, "/metrics");
    assert!(
        body.contains(&format!(
            "tagsmith_image_policy_scan_stale{{name=\"stuck\",namespace=\"{ns}\"}} 1"
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "tagsmith_image_policy_scan_stale{{name=\"app\",namespace=\"{ns}\"}} 0"
        )),
        "{body}"
    );
    assert!(body.contains(&format!(
        "gotk_reconcile_condition{{kind=\"ImageRepository\",name=\"closed\",namespace=\"{ns}\",status=\"False\",type=\"Ready\"}} 1"
    )), "{body}");
}

#[test]
fn suspended_objects_are_left_alone_until_resumed() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "suspend";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0"]));
    kube.apply(&format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: app, namespace: {ns}}}\nspec: {{image: \"{image}\", interval: 1m, insecure: true, suspend: true}}\n"
    ));
    let (_dir, store) = storage();
    let controller = Running::start(options(kube, ns, &store));
    let repo_path = path(kube, "ImageRepository", ns, "app");
    // The controller saw it (metrics) and left its status alone.
    poll(WAIT, "the suspended repository in the metrics", || {
        controller
            .get(true, "/metrics")
            .1
            .contains(&format!(
                "gotk_suspend_status{{kind=\"ImageRepository\",name=\"app\",namespace=\"{ns}\"}} 1"
            ))
            .then_some(())
    });
    let repo = kube.get(&repo_path);
    assert_eq!(
        repo["status"],
        serde_json::json!({"observedGeneration": -1}),
        "{repo}"
    );
    if let Some(lines) = flux_lines(kube, &["get", "image", "repository", "-A"], ns) {
        assert!(
            lines[1].contains("True") && lines[1].contains("waiting to be reconciled"),
            "{lines:?}"
        );
        let out = kube
            .flux(&["reconcile", "image", "repository", "app", "-n", ns])
            .unwrap();
        assert!(!out.status.success());
        assert!(
            out.stderr.contains("resource is suspended"),
            "{}",
            out.stderr
        );
    }
    kube.merge_patch(&repo_path, &serde_json::json!({"spec": {"suspend": false}}));
    let repo = wait_ready(kube, "ImageRepository", ns, "app", WAIT);
    assert_eq!(repo["status"]["lastScanResult"]["tagCount"], 1);
}

#[test]
fn events_also_go_to_the_events_address_as_flux_sends_them_to_notification_controller() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "notify";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0"]));
    let receiver = tagsmith_testkit::http::FaultServer::start(100, |_, _| {
        tagsmith_testkit::http::Reply::json(202, "")
    });
    kube.apply(&format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: {ns}\n  annotations: {{event.toolkit.fluxcd.io/team: shop}}\nspec: {{image: \"{image}\", interval: 1h, insecure: true}}\n"
    ));
    let (_dir, store) = storage();
    let mut options = options(kube, ns, &store);
    options.events_addr = Some(format!("http://{}/", receiver.host));
    let _controller = Running::start(options);
    wait_ready(kube, "ImageRepository", ns, "app", WAIT);
    let request = poll(WAIT, "an event at --events-addr", || {
        receiver.full_requests().into_iter().next()
    });
    assert!(request.line.starts_with("POST / "), "{}", request.line);
    let event: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(event["involvedObject"]["kind"], "ImageRepository");
    assert_eq!(event["involvedObject"]["namespace"], ns);
    assert_eq!(event["severity"], "info");
    assert_eq!(event["reason"], "Succeeded");
    assert_eq!(event["reportingController"], "image-reflector-controller");
    assert_eq!(event["metadata"]["event.toolkit.fluxcd.io/team"], "shop");
    assert!(event["message"]
        .as_str()
        .unwrap()
        .starts_with("successful scan: found 1 tags"));
    // The Kubernetes Event carries the same annotation.
    let recorded = events(kube, ns, "app");
    assert!(
        recorded
            .iter()
            .any(|e| e["metadata"]["annotations"]["event.toolkit.fluxcd.io/team"] == "shop"),
        "{recorded:?}"
    );
}

#[test]
fn objects_that_carry_fluxs_finalizer_are_released_on_deletion() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "finalizer";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    // As Flux's image-reflector-controller left it.
    kube.apply(&format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: {ns}\n  finalizers: [finalizers.fluxcd.io]\nspec: {{image: \"{image}\", interval: 1h, insecure: true}}\n"
    ));
    let (_dir, store) = storage();
    let _controller = Running::start(options(kube, ns, &store));
    let repo_path = path(kube, "ImageRepository", ns, "app");
    let (status, _) = kube.request("DELETE", &repo_path, "", None);
    assert_eq!(status, 200);
    poll(WAIT, "the object gone", || {
        (kube.request("GET", &repo_path, "", None).0 == 404).then_some(())
    });
}

#[test]
fn policies_created_together_make_one_commit_not_one_per_policy() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "burst";
    kube.create_namespace(ns);
    let names = ["a", "b", "c", "d"];
    let mut deploy = String::from("apiVersion: v1\nkind: List\nitems:\n");
    let mut objects = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: git-auth, namespace: {ns}}}\nstringData: {{username: {GIT_USER}, password: {GIT_PASSWORD}}}\n"
    );
    for name in names {
        let image = format!("{}/{ns}/{name}", registry.host);
        registry.seed(&format!("{ns}/{name}"), &tags(&["1.0.0", "2.0.0"]));
        deploy.push_str(&format!(
            "- image: {image}:1.0.0 # {{\"$imagepolicy\": \"{ns}:{name}\"}}\n"
        ));
        objects.push_str(&format!(
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{image: \"{image}\", interval: 1h, insecure: true}}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{imageRepositoryRef: {{name: {name}}}, policy: {{semver: {{range: \">=1.0.0\"}}}}}}\n"
        ));
    }
    let bare = tagsmith_testkit::git::BareRemote::with_files(&[("apps/list.yaml", &deploy)]);
    let http = tagsmith_testkit::git::HttpGitServer::start(bare.base(), GIT_USER, GIT_PASSWORD);
    objects.push_str(&format!(
        "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: fleet, namespace: {ns}}}\nspec: {{interval: 1m, url: \"{}\", ref: {{branch: main}}, secretRef: {{name: git-auth}}}}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: fleet, namespace: {ns}}}\nspec:\n  interval: 1h\n  sourceRef: {{kind: GitRepository, name: fleet}}\n  git:\n    commit: {{author: {{name: bot, email: bot@example.com}}}}\n    push: {{branch: main}}\n  update: {{path: ./apps, strategy: Setters}}\n",
        http.url("remote.git")
    ));
    let (_dir, store) = storage();
    let _controller = Running::start(options(kube, ns, &store));
    // Everything created at once, after the controller started.
    kube.apply(&objects);
    wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, |a| {
        a["status"]["observedPolicies"]
            .as_object()
            .is_some_and(|p| p.len() == names.len())
    });
    let list = bare.show("main", "apps/list.yaml");
    assert_eq!(list.matches(":2.0.0").count(), names.len(), "{list}");
    let log = bare.log("main");
    assert_eq!(log.len(), 2, "one commit for the four policies: {log:?}");
}
