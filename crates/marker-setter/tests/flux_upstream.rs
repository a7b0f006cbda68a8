//! Flux's own setter tests (image-automation-controller `internal/update`, the policy
//! applier and the controller's fixtures), re-expressed under
//! `testdata/flux-upstream/setters/<case>/`: `input/` (the tree), `expected/` (the files
//! Flux writes, as Flux's own expected trees hold only those), and `case.json` (policies,
//! the update path, symlinks to make, the files Flux screens in, the files it cannot parse,
//! and Flux's recorded changes: file, object, old and new value, setter).
//!
//! Each case runs `plan_tree` and is checked file by file. A check that fails because of a
//! known difference from Flux is listed in [`KNOWN_DIFFERENCES`]; the test asserts that the
//! failing checks are exactly those, so it fails when a difference goes away as well.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};

// No known difference left: a kustomize config named `Kustomization` (no extension) is
// read as Flux reads it. A difference that appears is listed here with its reason.
const KNOWN_DIFFERENCES: &[&str] = &[];

fn cases_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/flux-upstream/setters")
}

/// The regular files under `root` (none when it does not exist: a case where Flux writes
/// nothing has no `expected/`).
fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack: Vec<PathBuf> = root
        .is_dir()
        .then(|| root.to_path_buf())
        .into_iter()
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A change as Flux records it: file, object (apiVersion, kind, namespace, name; empty
/// when absent), old value, new value, setter.
type FluxChange = (String, [String; 4], String, String, String);

fn flux_changes(meta: &Value) -> Vec<FluxChange> {
    meta["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let o = &c["object"];
            let field = |k: &str| o[k].as_str().unwrap().to_string();
            (
                c["file"].as_str().unwrap().to_string(),
                [
                    field("apiVersion"),
                    field("kind"),
                    field("namespace"),
                    field("name"),
                ],
                c["old"].as_str().unwrap().to_string(),
                c["new"].as_str().unwrap().to_string(),
                c["setter"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Runs one case; returns the names of the checks that failed, with what differed.
fn run_case(case: &Path) -> BTreeMap<String, String> {
    let name = case.file_name().unwrap().to_string_lossy().to_string();
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("case.json")).unwrap()).unwrap();
    let policies = Policies::from_map(
        meta["policies"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let input = read_tree(&case.join("input"));
    for (rel, bytes) in &input {
        let dest = work.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
    // Symlinks cannot be committed portably, so the case names them.
    if let Some(links) = meta["symlinks"].as_object() {
        for (link, target) in links {
            std::os::unix::fs::symlink(target.as_str().unwrap(), work.path().join(link)).unwrap();
        }
    }
    let root = match meta["path"].as_str() {
        Some(path) => work.path().join(path),
        None => work.path().to_path_buf(),
    };
    let plan = plan_tree(&root, &policies, &TreeOptions::default()).unwrap();
    plan.write().unwrap();

    let mut failed = BTreeMap::new();
    let prefix = meta["path"]
        .as_str()
        .map(|p| format!("{p}/"))
        .unwrap_or_default();
    let expected = read_tree(&case.join("expected"));
    let output = read_tree(work.path());
    for (rel, before) in &input {
        let (check, want) = match expected.get(rel) {
            Some(after) => ("content", after),
            None => ("unchanged", before),
        };
        if output.get(rel) != Some(want) {
            let got = output
                .get(rel)
                .map(|b| String::from_utf8_lossy(b).into_owned());
            failed.insert(format!("{name}/{rel}: {check}"), format!("got {got:?}"));
        }
    }

    let mut ours: BTreeMap<String, Vec<FluxChange>> = BTreeMap::new();
    for (file, object, change) in plan.result().changes() {
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        let o = &object.object;
        ours.entry(file.path.clone()).or_default().push((
            file.path.clone(),
            [
                field(&o.api_version),
                field(&o.kind),
                field(&o.namespace),
                field(&o.name),
            ],
            change.old_value.clone(),
            change.new_value.clone(),
            change.setter.clone(),
        ));
    }
    let mut theirs: BTreeMap<String, Vec<FluxChange>> = BTreeMap::new();
    for change in flux_changes(&meta) {
        theirs.entry(change.0.clone()).or_default().push(change);
    }
    let files: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for file in files {
        let mut got = ours.get(file).cloned().unwrap_or_default();
        let mut want = theirs.get(file).cloned().unwrap_or_default();
        got.sort();
        want.sort();
        if got != want {
            failed.insert(
                format!("{name}/{prefix}{file}: changes"),
                format!("got {got:?}, Flux {want:?}"),
            );
        }
    }

    let screened = meta["screened"].as_array().unwrap().len();
    if plan.result().files_with_markers != screened {
        failed.insert(
            format!("{name}: screened"),
            format!(
                "{} files with markers, Flux screens {screened}",
                plan.result().files_with_markers
            ),
        );
    }
    let mut parse_errors: Vec<String> = plan
        .result()
        .warnings
        .iter()
        .filter(|w| w.code == "parse_error")
        .map(|w| w.path.clone())
        .collect();
    parse_errors.sort();
    let mut problems: Vec<String> = meta["problemFiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    problems.sort();
    if parse_errors != problems {
        failed.insert(
            format!("{name}: problem files"),
            format!("got {parse_errors:?}, Flux {problems:?}"),
        );
    }
    failed
}

#[test]
fn fluxs_setter_tests_make_the_same_changes_bar_the_known_differences() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "setter cases missing");
    let mut failed = BTreeMap::new();
    for case in &cases {
        failed.extend(run_case(case));
    }
    let failing: BTreeSet<&str> = failed.keys().map(String::as_str).collect();
    let known: BTreeSet<&str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let details: Vec<String> = failed
        .iter()
        .filter(|(k, _)| !known.contains(k.as_str()))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    assert_eq!(
        failing,
        known,
        "failing checks differ from the known differences:\n{}",
        details.join("\n")
    );
}
