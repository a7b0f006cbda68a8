//! Differential test against Flux's setter semantics: every golden input tree is run through
//! the Go harness in `benches/go/flux-setter` (kyaml `fieldmeta` + setter definitions, the
//! pipeline of image-automation-controller's `UpdateWithSetters`) and through tagsmith. The
//! multiset of changed scalars (file, setter, old value, new value) must be equal. The one
//! intended divergence: Flux rewrites a block scalar (`| # marker`), tagsmith leaves it and
//! warns `marker_on_block_scalar`; such changes must come with that warning.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};

fn build_harness(out: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/go/flux-setter");
    tagsmith_testkit::tools::go_build(&src, out, "flux-setter")
}

type Key = (String, String, String, String);

#[test]
fn changed_scalars_equal_fluxs() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let harness = build_harness(tmp.path());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/setter/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&golden)
        .expect("golden")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    let mut compared = 0;
    for case in cases {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(case.join("case.json")).expect("case.json"),
        )
        .expect("case JSON");
        let policies_json = tmp.path().join(format!("{name}.policies.json"));
        std::fs::write(&policies_json, meta["policies"].to_string()).expect("write policies");
        let policies = Policies::from_map(
            meta["policies"]
                .as_object()
                .expect("policies")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("ref").to_string())),
        )
        .expect("policies");
        let work = tmp.path().join(&name);
        std::fs::create_dir_all(&work).expect("mkdir");
        tagsmith_testkit::fs::copy_tree(&case.join("input"), &work);

        let out = Command::new(&harness)
            .arg("-policies")
            .arg(&policies_json)
            .arg("-dry-run")
            .arg(&work)
            .output()
            .expect("run the Flux harness");
        assert!(
            out.status.success(),
            "{name}: harness failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let flux: Value = serde_json::from_slice(&out.stdout).expect("harness JSON");
        let plan = plan_tree(&work, &policies, &TreeOptions::default()).expect("plan");

        let mut ours: Vec<Key> = plan
            .result()
            .changes()
            .map(|(f, _, c)| {
                (
                    f.path.clone(),
                    c.setter.clone(),
                    c.old_value.clone(),
                    c.new_value.clone(),
                )
            })
            .collect();
        let mut theirs: Vec<Key> = Vec::new();
        for c in flux["changes"].as_array().expect("changes") {
            let key: Key = (
                c["file"].as_str().expect("file").into(),
                c["setter"].as_str().expect("setter").into(),
                c["old"].as_str().expect("old").into(),
                c["new"].as_str().expect("new").into(),
            );
            if key.2.contains('\n') {
                assert!(
                    plan.result()
                        .warnings
                        .iter()
                        .any(|w| w.path == key.0 && w.code == "marker_on_block_scalar"),
                    "{name}: Flux changed a block scalar in {} that tagsmith did not report",
                    key.0
                );
                continue;
            }
            theirs.push(key);
        }
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{name}: changed scalars differ from Flux's");
        // Files Flux could not parse are the files tagsmith reports as parse errors.
        let mut problems: Vec<String> = flux["problemFiles"]
            .as_array()
            .expect("problemFiles")
            .iter()
            .map(|p| p.as_str().expect("path").to_string())
            .collect();
        let mut parse_errors: Vec<String> = plan
            .result()
            .warnings
            .iter()
            .filter(|w| w.code == "parse_error")
            .map(|w| w.path.clone())
            .collect();
        problems.sort();
        parse_errors.sort();
        assert_eq!(parse_errors, problems, "{name}: unparsable files");
        compared += ours.len();
    }
    assert!(compared >= 20, "only {compared} changes compared");
}
