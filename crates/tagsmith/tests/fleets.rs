//! Real-fleet shapes (testdata/fleets): what each cluster would have, and the run on it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use tagsmith::config::RunConfig;
use tagsmith::run::{run, RunContext, RunReport};
use tagsmith::sources::load_tree;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fleets/multi-cluster")
}

fn snapshot() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fleets/multi-cluster.tags.json")
}

/// A copy of the fleet to edit.
fn copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    tagsmith_testkit::fs::copy_tree(&fixture(), dir.path());
    dir
}

fn dry_run(root: &Path) -> RunReport {
    let mut config = RunConfig::for_root(root);
    config.dry_run = true;
    config.snapshot = Some(snapshot());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(&RunContext::new(config))).unwrap()
}

fn policy_names(objects: &tagsmith::crd::FluxObjects) -> Vec<String> {
    objects.policies.iter().map(|p| p.origin.key()).collect()
}

#[test]
fn each_cluster_has_what_its_kustomizations_apply_with_its_variables() {
    let loaded = load_tree(&fixture());
    let names: Vec<&str> = loaded.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["clusters/production", "clusters/staging"]);
    for (cluster, policy, region) in [
        (
            &loaded.clusters[0],
            "flux-system:podinfo-production",
            "eu-west-1",
        ),
        (
            &loaded.clusters[1],
            "flux-system:podinfo-staging",
            "eu-west-1",
        ),
    ] {
        assert!(
            cluster.objects.failures.is_empty(),
            "{:#?}",
            cluster.objects.failures
        );
        assert_eq!(policy_names(&cluster.objects), [policy]);
        // substituteFrom's ConfigMap reached the labels too.
        assert_eq!(cluster.objects.policies[0].labels["region"], region);
        // The ImageRepository written as JSON is read.
        assert_eq!(
            cluster.objects.repositories[0].image,
            "ghcr.io/stefanprodan/podinfo"
        );
        assert_eq!(cluster.objects.automations.len(), 1);
    }
    // The policy file no kustomization lists is never read, and the report says so.
    assert!(loaded
        .read
        .warnings_unapplied
        .iter()
        .any(|w| w.starts_with("apps/unlisted-policy.yaml holds Flux image objects")));
    assert!(!loaded
        .read
        .files
        .iter()
        .any(|f| f.path == "apps/unlisted-policy.yaml"));
    let policy_file = loaded
        .read
        .files
        .iter()
        .find(|f| f.path == "apps/overlays/staging/image-policy.yaml")
        .unwrap();
    assert!(
        policy_file
            .reason
            .contains("applied by Kustomization flux-system:apps"),
        "{policy_file:?}"
    );
    // The SOPS-encrypted Secret and the large gotk-components.yaml are read without fuss.
    assert!(
        loaded.objects.failures.is_empty(),
        "{:#?}",
        loaded.objects.failures
    );
}

#[test]
fn each_clusters_automation_updates_its_overlay_with_its_own_policy() {
    let report = dry_run(&fixture());
    assert!(!report.failed(), "{:#?}", report.errors());
    let diff = |cluster: &str| {
        report
            .automations
            .iter()
            .find(|a| a.cluster.as_deref() == Some(cluster))
            .and_then(|a| a.diff.clone())
            .unwrap()
    };
    assert!(
        diff("clusters/staging").contains("+          image: ghcr.io/stefanprodan/podinfo:7.0.0")
    );
    assert!(diff("clusters/production")
        .contains("+          image: ghcr.io/stefanprodan/podinfo:6.1.0"));
    // Production's v1beta1 automation renders .Updated.Images as Flux up to 2.6 did.
    let production = report
        .automations
        .iter()
        .find(|a| a.cluster.as_deref() == Some("clusters/production"))
        .unwrap();
    assert!(
        production
            .message
            .as_deref()
            .unwrap()
            .contains("- ghcr.io/stefanprodan/podinfo:6.1.0\n"),
        "{production:?}"
    );
}

#[test]
fn two_different_definitions_of_one_policy_are_never_picked_silently() {
    let dir = copy();
    let overlay = dir.path().join("apps/overlays/staging");
    std::fs::write(
        overlay.join("second-policy.yaml"),
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo-${cluster_name}\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: podinfo\n  policy:\n    semver:\n      range: '>=6.0.0 <7.0.0'\n",
    )
    .unwrap();
    let kustomization = overlay.join("kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization).unwrap();
    std::fs::write(
        &kustomization,
        text.replace(
            "  - image-policy.yaml\n",
            "  - image-policy.yaml\n  - second-policy.yaml\n",
        ),
    )
    .unwrap();
    let report = dry_run(dir.path());
    let errors = report.errors();
    let duplicate = errors
        .iter()
        .find(|(_, e)| e.code == "duplicate_object")
        .unwrap();
    assert!(
        duplicate
            .1
            .message
            .contains("apps/overlays/staging/image-policy.yaml:1")
            && duplicate
                .1
                .message
                .contains("apps/overlays/staging/second-policy.yaml:1"),
        "{duplicate:?}"
    );
    // Staging's marker is left alone; production, which has one definition, still updates.
    let staging = report
        .automations
        .iter()
        .find(|a| a.cluster.as_deref() == Some("clusters/staging"))
        .unwrap();
    assert!(staging.result.is_empty(), "{staging:?}");
    assert!(report
        .automations
        .iter()
        .any(|a| a.cluster.as_deref() == Some("clusters/production") && a.diff.is_some()));
}

#[test]
fn an_object_with_an_unresolved_variable_fails_alone() {
    let dir = copy();
    let policy = dir.path().join("apps/overlays/staging/image-policy.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace("${cluster_name}", "${cluster_nmae}")).unwrap();
    let loaded = load_tree(dir.path());
    let staging = &loaded.clusters[1];
    assert_eq!(
        staging.objects.failures.len(),
        1,
        "{:#?}",
        staging.objects.failures
    );
    let error = &staging.objects.failures[0].error;
    assert_eq!(error.code, "unresolved_variable");
    assert!(
        error
            .message
            .starts_with("apps/overlays/staging/image-policy.yaml:4: metadata.name:"),
        "{error:?}"
    );
    assert_eq!(
        policy_names(&loaded.clusters[0].objects),
        ["flux-system:podinfo-production"]
    );
}

#[test]
fn without_flux_kustomizations_every_yaml_file_is_read_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: app, namespace: ns}\nspec:\n  imageRepositoryRef: {name: app}\n  policy: {semver: {range: '1.x'}}\n",
    )
    .unwrap();
    let loaded = load_tree(dir.path());
    assert!(
        loaded.read.mode.starts_with("every YAML file"),
        "{}",
        loaded.read.mode
    );
    assert_eq!(loaded.read.files[0].path, "policy.yaml");
    assert!(loaded.clusters.is_empty());
    assert_eq!(policy_names(&loaded.objects), ["ns:app"]);
}
