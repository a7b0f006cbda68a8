//! Flux's own tag-selection tests (image-reflector-controller `internal/policy` and the
//! ImagePolicy cases of `internal/controller`), re-expressed as vectors in
//! `testdata/flux-upstream/policy.json` and run through the public API: the spec is read
//! in Flux's shape with serde, built with `ImagePolicy::new`, and asked with `select` and
//! `explain`. Errors are compared by kind (`code()`); where Flux's message quotes a value
//! or Go's regexp error, ours must carry it too.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use tagsmith_image_policy_core::{Exclusions, ImagePolicy, Order, PolicyError, PolicySpec};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/flux-upstream/policy.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The orders a case runs in: as given; for a shuffled Flux test also reversed and rotated;
/// for a controller test also sorted descending by bytes, the order Flux hands the policy.
fn orders(case: &Value, tags: &[String]) -> Vec<Vec<String>> {
    let mut orders = vec![tags.to_vec()];
    if case["shuffled"] == true {
        orders.push(tags.iter().rev().cloned().collect());
        for k in 1..tags.len() {
            let mut rotated = tags.to_vec();
            rotated.rotate_left(k);
            orders.push(rotated);
        }
    }
    if case["fluxSortsTags"] == true {
        let mut sorted = tags.to_vec();
        sorted.sort_by(|a, b| b.as_bytes().cmp(a.as_bytes()));
        orders.push(sorted);
    }
    orders
}

/// What our error must share with Flux's: the kind, and the text Flux quotes from its input
/// (the value that is not a number, Go's regexp message).
fn assert_same_error(name: &str, err: &PolicyError, want: &Value) {
    assert_eq!(err.code(), want["code"].as_str().unwrap(), "{name}: {err}");
    let flux = want["flux"].as_str().unwrap();
    if let Some(value) = want["names"].as_str() {
        assert!(
            err.to_string().contains(&format!("{value:?}")),
            "{name}: {err} does not name {value:?}"
        );
    }
    if let PolicyError::InvalidRegex { reason, .. } = err {
        assert!(
            flux.ends_with(reason.as_str()),
            "{name}: Flux says {flux:?}, we say {reason:?}"
        );
    }
}

#[test]
fn fluxs_policy_tests_choose_the_same_tags() {
    let data = vectors();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 70, "vectors missing");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let spec: PolicySpec = match serde_json::from_value(case["spec"].clone()) {
            Ok(spec) => spec,
            Err(err) => {
                // An order that is neither asc nor desc fails as the spec is read, with the
                // `invalid_order` error's text; no policy chosen at all cannot be held by
                // our spec type ("invalid_spec").
                match case["error"]["code"].as_str().unwrap() {
                    "invalid_order" => {
                        let choice = case["spec"]["policy"].as_object().unwrap();
                        let order = choice.values().next().unwrap()["order"].as_str().unwrap();
                        let want = order.parse::<Order>().unwrap_err();
                        assert_eq!(want.code(), "invalid_order");
                        assert!(err.to_string().contains(&want.to_string()), "{name}: {err}");
                    }
                    code => assert_eq!(code, "invalid_spec", "{name}: {err}"),
                }
                continue;
            }
        };
        let policy = match ImagePolicy::new(&spec) {
            Ok(policy) => policy,
            Err(err) => {
                assert!(case["error"].is_object(), "{name}: unexpected {err}");
                assert_same_error(name, &err, &case["error"]);
                continue;
            }
        };
        let Some(tags) = case.get("tags").map(strings) else {
            assert!(case["error"].is_null(), "{name}: built, Flux refuses it");
            continue;
        };
        let exclusions = match case.get("exclusionList") {
            Some(patterns) => Exclusions::new(&strings(patterns)).unwrap(),
            None => Exclusions::none(),
        };
        for tags in orders(case, &tags) {
            let (kept, _) = exclusions.retain(tags.clone());
            let chosen = policy.select(&kept);
            let explained = policy.explain_excluding(&tags, &exclusions, usize::MAX);
            match (&case["expected"], &case["error"]) {
                (Value::String(want), _) => {
                    assert_eq!(chosen.as_ref().unwrap(), want, "{name} on {tags:?}");
                    assert_eq!(&explained.unwrap().latest, want, "{name} on {tags:?}");
                }
                (_, Value::Object(_)) => {
                    assert_same_error(name, &chosen.unwrap_err(), &case["error"]);
                    assert_same_error(name, &explained.unwrap_err(), &case["error"]);
                }
                _ => {
                    let want = strings(&case["expectedValues"]);
                    let mut values: Vec<String> = explained
                        .unwrap()
                        .top
                        .into_iter()
                        .map(|c| c.value)
                        .collect();
                    values.sort();
                    assert_eq!(values, want, "{name} on {tags:?}");
                }
            }
        }
    }
}

#[test]
fn fluxs_exclusion_list_tests_keep_the_same_tags() {
    let data = vectors();
    let cases = data["exclusions"].as_array().unwrap();
    assert!(cases.len() >= 10, "vectors missing");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let exclusions = match case.get("exclusionList") {
            Some(patterns) => Exclusions::new(&strings(patterns)),
            None => Ok(Exclusions::flux_default()),
        };
        let exclusions = match (exclusions, &case["error"]) {
            (Ok(exclusions), Value::Null) => exclusions,
            (Err(err), want @ Value::Object(_)) => {
                assert_same_error(name, &err, want);
                continue;
            }
            (other, _) => panic!("{name}: unexpected {other:?}"),
        };
        let (mut kept, dropped) = exclusions.retain(strings(&case["tags"]));
        let mut want = strings(&case["kept"]);
        assert_eq!(dropped, case["tags"].as_array().unwrap().len() - want.len());
        kept.sort_by(|a, b| b.cmp(a));
        want.sort_by(|a, b| b.cmp(a));
        assert_eq!(kept, want, "{name}");
    }
}
