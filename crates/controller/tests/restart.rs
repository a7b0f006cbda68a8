//! What survives a restart (the tag store), what never leaves a Secret (credentials), and
//! shards: the controller against a real kube-apiserver with Flux's CRDs.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::time::Duration;
use tagsmith_testkit::registry::LocalRegistry;

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn a_restart_keeps_the_last_scan_results_and_does_not_rescan() {
    let Some(env) = env() else { return };
    let kube = &env.kube;
    let ns = "restart";
    kube.create_namespace(ns);
    // A registry of this test's own: it is stopped before the restart.
    let registry = LocalRegistry::start();
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0", "1.0.1", "2.0.0"]));
    kube.apply(&format!(
        r#"apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: app, namespace: {ns}}}
spec: {{image: "{image}", interval: 1h, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app, namespace: {ns}}}
spec: {{imageRepositoryRef: {{name: app}}, policy: {{semver: {{range: ">=1.0.0"}}}}}}
"#
    ));
    let (_dir, store) = storage();
    let controller = Running::start(options(kube, ns, &store));
    let scanned = wait_ready(kube, "ImageRepository", ns, "app", WAIT);
    wait_until(kube, "ImagePolicy", ns, "app", WAIT, |p| {
        p["status"]["latestRef"]["tag"] == "2.0.0"
    });
    controller.stop().unwrap();

    // The registry is gone: any scan now would fail.
    drop(registry);
    let controller = Running::start(options(kube, ns, &store));
    // A policy the first run never saw gets its tag from the store.
    kube.apply(&format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: one, namespace: {ns}}}\nspec: {{imageRepositoryRef: {{name: app}}, policy: {{semver: {{range: \"1.x\"}}}}}}\n"
    ));
    let one = wait_until(kube, "ImagePolicy", ns, "one", WAIT, is_ready);
    assert_eq!(one["status"]["latestRef"]["tag"], "1.0.1");
    // The restarted controller reconciled the repository (metrics) without scanning: its
    // last scan stands and it is still Ready.
    poll(WAIT, "the repository reconciled after the restart", || {
        controller
            .get(true, "/metrics")
            .1
            .contains(&format!(
                "gotk_reconcile_duration_seconds_count{{kind=\"ImageRepository\",name=\"app\",namespace=\"{ns}\"}} 1"
            ))
            .then_some(())
    });
    let repo = kube.get(&path(kube, "ImageRepository", ns, "app"));
    assert!(is_ready(&repo), "{repo}");
    assert_eq!(
        repo["status"]["lastScanResult"],
        scanned["status"]["lastScanResult"]
    );
    let repo_events = events(kube, ns, "app");
    assert!(
        repo_events
            .iter()
            .all(|e| e["reason"] != "ReadOperationFailed"),
        "{repo_events:?}"
    );
}

#[test]
fn registry_credentials_work_and_never_appear_in_status_or_events() {
    let Some(env) = env() else { return };
    let kube = &env.kube;
    let ns = "creds";
    kube.create_namespace(ns);
    let password = "hunter2-registry-password";
    let registry = LocalRegistry::start_with_auth("puller", password);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0", "1.1.0"]));
    let docker_config = |pw: &str| {
        serde_json::json!({"auths": {registry.host.clone(): {"username": "puller", "password": pw}}})
            .to_string()
    };
    let wrong = "not-the-password-0451";
    let secret = |pw: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": ns,
                         "labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": docker_config(pw)}
        })
        .to_string()
    };
    kube.apply(&secret(wrong));
    kube.apply(&format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: app, namespace: {ns}}}\nspec: {{image: \"{image}\", interval: 1h, insecure: true, secretRef: {{name: regcred}}}}\n"
    ));
    let (_dir, store) = storage();
    let _controller = Running::start(options(kube, ns, &store));
    let refused = wait_until(kube, "ImageRepository", ns, "app", WAIT, |r| {
        condition(r, "Ready").is_some_and(|c| c["reason"] == "ReadOperationFailed")
    });
    let bad_events = events(kube, ns, "app");
    let written = format!("{refused}{bad_events:?}");
    assert!(
        !written.contains(wrong) && !written.contains(password),
        "{written}"
    );

    // The right password, in the watched Secret: the repository recovers.
    kube.apply(&secret(password));
    let repo = wait_ready(kube, "ImageRepository", ns, "app", WAIT);
    assert_eq!(repo["status"]["lastScanResult"]["tagCount"], 2);
    let all = format!("{repo}{:?}", events(kube, ns, "app"));
    assert!(!all.contains(password) && !all.contains(wrong));
}

#[test]
fn shards_reconcile_only_the_objects_their_label_selector_selects() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "shards";
    kube.create_namespace(ns);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0"]));
    kube.apply(&format!(
        r#"apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: one, namespace: {ns}, labels: {{sharding.fluxcd.io/key: shard1}}}}
spec: {{image: "{image}", interval: 1h, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {{name: main, namespace: {ns}}}
spec: {{image: "{image}", interval: 1h, insecure: true}}
"#
    ));
    let (_d1, store1) = storage();
    let (_d2, store2) = storage();
    let mut shard = options(kube, ns, &store1);
    shard.watch_label_selector = "sharding.fluxcd.io/key in (shard1)".into();
    let mut main = options(kube, ns, &store2);
    main.watch_label_selector = "!sharding.fluxcd.io/key".into();
    let shard = Running::start(shard);
    let main = Running::start(main);
    wait_ready(kube, "ImageRepository", ns, "one", WAIT);
    wait_ready(kube, "ImageRepository", ns, "main", WAIT);
    let series = |name: &str| {
        format!("gotk_reconcile_duration_seconds_count{{kind=\"ImageRepository\",name=\"{name}\",namespace=\"{ns}\"}}")
    };
    let (_, shard_metrics) = shard.get(true, "/metrics");
    let (_, main_metrics) = main.get(true, "/metrics");
    assert!(
        shard_metrics.contains(&series("one")) && !shard_metrics.contains(&series("main")),
        "{shard_metrics}"
    );
    assert!(
        main_metrics.contains(&series("main")) && !main_metrics.contains(&series("one")),
        "{main_metrics}"
    );
}

#[test]
fn the_exported_least_privilege_rbac_is_enough_to_reconcile_everything() {
    let Some(env) = env() else { return };
    let (kube, registry) = (&env.kube, &env.registry);
    let ns = "rbac";
    kube.create_namespace(ns);
    // Exactly the rules `tagsmith install --export` grants (its Role's Lease rules bound
    // cluster-wide here: the harness binds one ClusterRole).
    let mut rules = tagsmith_controller::install::cluster_rules();
    let lease = tagsmith_controller::install::lease_rules();
    rules
        .as_array_mut()
        .unwrap()
        .extend(lease.as_array().unwrap().iter().cloned());
    let user = kube.service_account_with_rules(ns, "tagsmith-controller", &rules);
    let image = format!("{}/{ns}/app", registry.host);
    registry.seed(&format!("{ns}/app"), &tags(&["1.0.0", "1.0.1"]));
    let remote = Remote::new(&format!("{image}:1.0.0"), &format!("{ns}:app"));
    kube.apply(&mission_yaml(ns, &image, "1m", &remote.url()));
    let (_dir, store) = storage();
    let mut options = options(kube, ns, &store);
    options.kubeconfig = Some(user.kubeconfig.clone());
    options.leader_elect = true;
    let _controller = Running::start(options);
    wait_until(kube, "ImageUpdateAutomation", ns, "fleet", WAIT, |a| {
        is_ready(a) && a["status"]["lastPushCommit"].is_string()
    });
    assert!(remote.deploy().contains(&format!("{image}:1.0.1")));
    // Events were recorded with those rights too.
    assert!(!events(kube, ns, "app").is_empty());
}
