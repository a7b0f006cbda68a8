//! The shared vectors in `testdata/policy/cases.json` (also read by the Python and Node
//! tests), checked against the Rust API.

use serde_json::Value;
use tagsmith_image_policy_core::{ImagePolicy, Order, PolicyError, PolicySpec};

fn spec_of(case: &Value) -> Result<PolicySpec, PolicyError> {
    let mut spec = if let Some(range) = case["semver"].as_str() {
        PolicySpec::semver(range)
    } else if let Some(order) = case["alphabetical"].as_str() {
        PolicySpec::alphabetical(order.parse::<Order>()?)
    } else {
        let order = case["numerical"].as_str().expect("a policy");
        PolicySpec::numerical(order.parse::<Order>()?)
    };
    if let Some(p) = case["pattern"].as_str() {
        spec = spec.with_pattern(p);
    }
    if let Some(e) = case["extract"].as_str() {
        spec = spec.with_extract(e);
    }
    spec.skip_non_numeric = case["skip_non_numeric"].as_bool().unwrap_or(false);
    Ok(spec)
}

#[test]
fn shared_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/policy/cases.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors"))
        .expect("vectors are JSON");
    let cases = data["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let tags: Vec<&str> = case["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| t.as_str().expect("tag"))
            .collect();
        let result = spec_of(case).and_then(|s| ImagePolicy::new(&s)?.select(&tags));
        match (case["expected"].as_str(), case["error"].as_str(), result) {
            (Some(expected), _, Ok(latest)) => assert_eq!(latest, expected, "{name}"),
            (_, Some(code), Err(err)) => assert_eq!(err.code(), code, "{name}: {err}"),
            (_, _, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}
