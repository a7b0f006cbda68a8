//! Message templates over Flux's data model (testdata/git/templates.json): the expected
//! outputs come from Go's `text/template` with Flux's types (`tests/go/flux-template`);
//! `renders_like_go_with_fluxs_types` also runs that harness live and compares every case.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tagsmith_git_commit::{ChangeRecord, MessageTemplate, ObjectRef, TemplateData};

fn vectors_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/git/templates.json")
}

fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors_path()).expect("read")).expect("JSON")
}

/// The template data of the vectors, as tagsmith builds it.
fn data(vectors: &Value) -> TemplateData {
    let d = &vectors["data"];
    let s = |v: &Value| v.as_str().expect("string").to_string();
    let changes: Vec<ChangeRecord> = d["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| ChangeRecord {
            file: s(&c["file"]),
            object: ObjectRef {
                api_version: s(&c["apiVersion"]),
                kind: s(&c["kind"]),
                namespace: s(&c["namespace"]),
                name: s(&c["name"]),
            },
            old_value: s(&c["old"]),
            new_value: s(&c["new"]),
            setter: s(&c["setter"]),
        })
        .collect();
    let values: BTreeMap<String, String> =
        serde_json::from_value(d["values"].clone()).expect("values");
    TemplateData::new(
        d["automation"]["namespace"].as_str().expect("namespace"),
        d["automation"]["name"].as_str().expect("name"),
        &changes,
        values,
    )
}

fn render(template: &str, data: &TemplateData) -> Result<String, tagsmith_git_commit::GitError> {
    MessageTemplate::parse(template).and_then(|t| t.render(data))
}

#[test]
fn vectors_render_as_expected() {
    let vectors = vectors();
    let data = data(&vectors);
    for case in vectors["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let template = case["template"].as_str().expect("template");
        match (case["expected"].as_str(), case["error"].as_str()) {
            (Some(expected), _) => assert_eq!(
                render(template, &data).unwrap_or_else(|e| panic!("{name}: {e}")),
                expected,
                "{name}"
            ),
            (_, Some(fragment)) => {
                let err = render(template, &data).expect_err(name);
                assert_eq!(err.code(), "template");
                assert!(err.to_string().contains(fragment), "{name}: {err}");
            }
            _ => panic!("{name}: needs expected or error"),
        }
    }
}

#[test]
fn renders_like_go_with_fluxs_types() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/go/flux-template");
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = tagsmith_testkit::tools::go_build(&src, tmp.path(), "flux-template");
    let out = Command::new(&bin)
        .arg(vectors_path())
        .output()
        .expect("run the harness");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let go_results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let vectors = vectors();
    let data = data(&vectors);
    let mut compared = 0;
    for (case, go) in vectors["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .zip(&go_results)
    {
        let name = case["name"].as_str().expect("name");
        assert_eq!(go["name"], case["name"]);
        if case["tagsmithOnly"].as_bool() == Some(true) {
            assert!(go["error"].is_string(), "{name}: Go has no such field");
            continue;
        }
        let ours = render(case["template"].as_str().expect("template"), &data);
        match go["output"].as_str() {
            Some(expected) => assert_eq!(
                ours.unwrap_or_else(|e| panic!("{name}: Go renders it, tagsmith fails: {e}")),
                expected,
                "{name}"
            ),
            None => assert!(ours.is_err(), "{name}: Go fails, tagsmith renders it"),
        }
        compared += 1;
    }
    assert!(compared >= 8, "only {compared} cases compared");
}

#[test]
fn empty_template_is_flux_default() {
    let t = MessageTemplate::or_default(Some("  ")).expect("default");
    let data = TemplateData::new("ns", "n", &[], BTreeMap::new());
    assert_eq!(
        t.render(&data).expect("render"),
        "Update from image update automation"
    );
}
