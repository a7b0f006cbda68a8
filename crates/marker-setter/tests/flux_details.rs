//! Three details Flux's own tests pin down (image-automation-controller `internal/update`,
//! kyaml's comment binding), re-expressed here: the `Kustomization` file name, comments
//! after flow collections, and paths relative to the tree root given.

#![allow(clippy::unwrap_used)]

mod common;

use common::write;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};

fn policies() -> Policies {
    Policies::from_map([("ns:app", "reg.example.com/team/app:2.0.0")]).unwrap()
}

const KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: app\n    newName: reg.example.com/team/app # {\"$imagepolicy\": \"ns:app:name\"}\n    newTag: 1.0.0 # {\"$imagepolicy\": \"ns:app:tag\"}\n";

#[test]
fn a_file_named_kustomization_without_extension_is_read() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("Kustomization"), KUSTOMIZATION);
    write(&dir.path().join("overlay/Kustomization"), KUSTOMIZATION);
    // Only that exact name, as Flux's reader: not another case, not another extension.
    for other in ["kustomization", "Kustomization.bak", "MyKustomization"] {
        write(&dir.path().join(other), KUSTOMIZATION);
    }
    let plan = plan_tree(dir.path(), &policies(), &TreeOptions::default()).unwrap();
    assert_eq!(
        plan.changed_paths(),
        [
            PathBuf::from("Kustomization"),
            PathBuf::from("overlay/Kustomization")
        ]
    );
    let change = &plan.result().files[0].objects[0].changes[0];
    assert_eq!(
        (change.setter.as_str(), change.new_value.as_str()),
        ("ns:app:tag", "2.0.0")
    );
}

/// Lines whose marker follows the end of a flow collection (kyaml binds the comment to the
/// collection: nothing is set), and lines where it follows a value inside one (set).
const FLOW: &str = r#"mapping: {repository: reg.example.com/team/app, tag: 1.0.0} # {"$imagepolicy": "ns:app:tag"}
sequence: [reg.example.com/team/app:1.0.0] # {"$imagepolicy": "ns:app"}
quoted: {tag: "1.0.0" } # {"$imagepolicy": "ns:app:tag"}
closed: {repository: reg.example.com/team/app,
  tag: 1.0.0} # {"$imagepolicy": "ns:app:tag"}
spaced: [
  reg.example.com/team/app:1.0.0  ] # {"$imagepolicy": "ns:app"}
inner: {a: [1.0.0], # {"$imagepolicy": "ns:app:tag"}
  b: c}
items:
  - {name: app, tag: 1.0.0} # {"$imagepolicy": "ns:app:tag"}
comma: {tag: 1.1.0, # {"$imagepolicy": "ns:app:tag"}
  other: x}
open: [reg.example.com/team/app:1.1.0, # {"$imagepolicy": "ns:app"}
  other]
last: [
  reg.example.com/team/app:1.1.0 # {"$imagepolicy": "ns:app"}
  ]
"#;

#[test]
fn a_comment_after_a_flow_collection_sets_nothing_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("flow.yaml"), FLOW);
    let plan = plan_tree(dir.path(), &policies(), &TreeOptions::default()).unwrap();
    let lines: Vec<usize> = plan.result().changes().map(|(_, _, c)| c.line).collect();
    // Only the three markers that follow a value inside the collection.
    assert_eq!(lines, [12, 14, 17]);
    let refused: Vec<(usize, &str)> = plan
        .result()
        .warnings
        .iter()
        .map(|w| (w.line, w.code.as_str()))
        .collect();
    assert_eq!(
        refused,
        [1, 2, 3, 5, 7, 8, 11].map(|l| (l, "marker_on_collection"))
    );
}

#[test]
fn flow_collection_comments_match_fluxs_setter() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/go/flux-setter");
    let harness = tagsmith_testkit::tools::go_build(&src, tmp.path(), "flux-setter");
    let tree = tmp.path().join("tree");
    write(&tree.join("flow.yaml"), FLOW);
    let policies_json = tmp.path().join("policies.json");
    std::fs::write(
        &policies_json,
        r#"{"ns:app": "reg.example.com/team/app:2.0.0"}"#,
    )
    .unwrap();
    let out = Command::new(harness)
        .arg("-policies")
        .arg(&policies_json)
        .arg("-dry-run")
        .arg(&tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flux: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut theirs: Vec<(u64, String, String)> = flux["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["line"].as_u64().unwrap(),
                c["old"].as_str().unwrap().to_string(),
                c["new"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let plan = plan_tree(&tree, &policies(), &TreeOptions::default()).unwrap();
    let mut ours: Vec<(u64, String, String)> = plan
        .result()
        .changes()
        .map(|(_, _, c)| (c.line as u64, c.old_value.clone(), c.new_value.clone()))
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs);
}

#[test]
fn change_paths_are_relative_to_the_tree_root_given() {
    let repo = tempfile::tempdir().unwrap();
    write(
        &repo.path().join("clusters/prod/apps/app.yaml"),
        KUSTOMIZATION,
    );
    write(
        &repo.path().join("clusters/prod/Kustomization"),
        KUSTOMIZATION,
    );
    write(&repo.path().join("clusters/dev/app.yaml"), KUSTOMIZATION);
    let prod = repo.path().join("clusters/prod");
    for root in [
        prod.clone(),
        repo.path().join("clusters/prod/"),
        repo.path().join("clusters/./prod"),
        repo.path().join("clusters/dev/../prod"),
    ] {
        let opts = TreeOptions {
            confine_to: Some(repo.path().to_path_buf()),
            ..TreeOptions::default()
        };
        let plan = plan_tree(&root, &policies(), &opts).unwrap();
        let paths: Vec<&str> = plan
            .result()
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            paths,
            ["Kustomization", "apps/app.yaml"],
            "{}",
            root.display()
        );
        assert_eq!(
            plan.changed_paths(),
            [
                PathBuf::from("Kustomization"),
                PathBuf::from("apps/app.yaml")
            ]
        );
        assert!(plan.unified_diff().contains("+++ b/apps/app.yaml\n"));
        assert!(plan.new_content("apps/app.yaml").is_some());
    }
}
