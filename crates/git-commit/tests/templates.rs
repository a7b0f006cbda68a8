//! Message templates built from Flux's documented examples (testdata/git/templates.json).

use serde_json::Value;
use std::collections::BTreeMap;
use tagsmith_git_commit::{ChangeRecord, MessageTemplate, ObjectRef, TemplateData};

fn changes() -> Vec<ChangeRecord> {
    let deploy = ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: "shop".into(),
        name: "checkout".into(),
    };
    vec![
        ChangeRecord {
            file: "apps/checkout/deployment.yaml".into(),
            object: deploy.clone(),
            old_value: "reg.example.com/team/checkout:1.2.3".into(),
            new_value: "reg.example.com/team/checkout:1.4.2".into(),
            setter: "flux-system:checkout".into(),
        },
        ChangeRecord {
            file: "apps/checkout/deployment.yaml".into(),
            object: deploy,
            old_value: "0.9.0".into(),
            new_value: "0.10.1".into(),
            setter: "flux-system:proxy:tag".into(),
        },
    ]
}

#[test]
fn documented_examples_render_as_expected() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/git/templates.json"
    );
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    let values: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
    let data = TemplateData::new("flux-system", "shop-images", &changes(), values);
    for case in cases.as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let template = case["template"].as_str().expect("template");
        match (case["expected"].as_str(), case["error"].as_str()) {
            (Some(expected), _) => {
                let t = MessageTemplate::parse(template).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    t.render(&data).unwrap_or_else(|e| panic!("{name}: {e}")),
                    expected,
                    "{name}"
                );
            }
            (_, Some(fragment)) => {
                let err = MessageTemplate::parse(template)
                    .and_then(|t| t.render(&data))
                    .expect_err(name);
                assert_eq!(err.code(), "template");
                assert!(err.to_string().contains(fragment), "{name}: {err}");
            }
            _ => panic!("{name}: needs expected or error"),
        }
    }
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

/// Flux keys `.Changed.Objects` by a struct; gotmpl maps are keyed by strings, so the key is
/// `Kind/namespace/name` and a field on it is a render error naming the field, not a
/// silently wrong message.
#[test]
fn struct_key_fields_are_a_clear_render_error() {
    let t = MessageTemplate::parse(
        "{{ range $resource, $changes := .Changed.Objects -}}\n- {{ $resource.Kind }} {{ $resource.Name }}\n{{ end -}}",
    )
    .expect("parses");
    let data = TemplateData::new("flux-system", "shop-images", &changes(), BTreeMap::new());
    let err = t.render(&data).expect_err("a field on a string key");
    assert_eq!(err.code(), "template");
    assert!(err.to_string().contains("Kind"), "{err}");
    // The supported spelling: the key itself, or the fields every change carries.
    let t = MessageTemplate::parse(
        "{{ range $resource, $changes := .Changed.Objects -}}\n- {{ $resource }} ({{ (index $changes 0).Kind }} {{ (index $changes 0).Name }})\n{{ end -}}",
    )
    .expect("parses");
    assert_eq!(
        t.render(&data).expect("render"),
        "- Deployment/shop/checkout (Deployment checkout)\n"
    );
}
