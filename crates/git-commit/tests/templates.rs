//! Message templates over Flux's data model (testdata/git/templates.json): the expected
//! outputs come from Go's `text/template` with Flux's types (`tests/go/flux-template`);
//! `renders_like_go_with_fluxs_types` also runs that harness live and compares every case.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tagsmith_git_commit::{ChangeRecord, MessageTemplate, ObjectIdentifier, TemplateData};

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
            object: ObjectIdentifier {
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

/// The data of a `v1beta1`/`v1beta2` automation: also `.Updated`.
fn legacy_data(vectors: &Value) -> TemplateData {
    let images: BTreeMap<String, String> =
        serde_json::from_value(vectors["data"]["images"].clone()).expect("images");
    data(vectors).with_updated(images)
}

fn render(template: &str, data: &TemplateData) -> Result<String, tagsmith_git_commit::GitError> {
    MessageTemplate::parse(template).and_then(|t| t.render(data))
}

/// Renders a case as its object's API version would: `legacyUpdated` cases as a
/// `v1beta2` automation, the others as a `v1` one.
fn render_case(case: &Value, vectors: &Value) -> Result<String, tagsmith_git_commit::GitError> {
    let template = case["template"].as_str().expect("template");
    if case["legacyUpdated"].as_bool() == Some(true) {
        MessageTemplate::parse_legacy(template).and_then(|t| t.render(&legacy_data(vectors)))
    } else {
        render(template, &data(vectors))
    }
}

#[test]
fn vectors_render_as_expected() {
    let vectors = vectors();
    for case in vectors["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        match (case["expected"].as_str(), case["error"].as_str()) {
            (Some(expected), _) => assert_eq!(
                render_case(case, &vectors).unwrap_or_else(|e| panic!("{name}: {e}")),
                expected,
                "{name}"
            ),
            (_, Some(fragment)) => {
                let err = render_case(case, &vectors).expect_err(name);
                assert_eq!(err.code(), "template");
                assert!(err.to_string().contains(fragment), "{name}: {err}");
            }
            _ => panic!("{name}: needs expected or error"),
        }
    }
}

#[test]
fn renders_like_go_with_fluxs_types() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
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
        let ours = render_case(case, &vectors);
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
    let legacy = vectors["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["legacyUpdated"].as_bool() == Some(true))
        .count();
    assert!(legacy >= 5, "only {legacy} .Updated cases");
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

#[test]
fn updated_is_refused_for_v1_and_rendered_for_v1beta() {
    let template = "{{ range .Updated.Images }}{{ . }} {{ end }}";
    assert!(tagsmith_git_commit::uses_updated(template));
    assert!(tagsmith_git_commit::uses_updated(
        "{{ .Changed.ImageResult.Images }}"
    ));
    assert!(!tagsmith_git_commit::uses_updated(
        "Updated images: {{ range .Changed.Changes }}{{ .NewValue }}{{ end }}"
    ));
    assert!(!tagsmith_git_commit::uses_updated(
        "{{ .Values.UpdatedBy }}"
    ));
    let err = MessageTemplate::parse(template).expect_err("v1 has no .Updated");
    assert!(err.to_string().contains("Flux removed"), "{err}");
    let vectors = vectors();
    let t = MessageTemplate::parse_legacy(template).expect("v1beta templates may use it");
    assert_eq!(
        t.render(&legacy_data(&vectors)).expect("render"),
        "ghcr.io/org/builds:2025.03.01-9d8e7f6 reg.example.com/team/checkout:1.4.2 \
         reg.example.com/team/proxy:0.10.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef "
    );
    // Without the image refs there is nothing to render it from.
    let err = t.render(&data(&vectors)).expect_err("no images given");
    assert!(err.to_string().contains("with_updated"), "{err}");
}

fn render_empty(template: &str) -> Result<String, tagsmith_git_commit::GitError> {
    render(
        template,
        &TemplateData::new("ns", "n", &[], BTreeMap::new()),
    )
}

fn assert_budget_error(template: &str, fragment: &str) {
    let err = render_empty(template).expect_err(template);
    assert_eq!(err.code(), "template");
    assert!(err.to_string().contains(fragment), "{template}: {err}");
}

#[test]
fn repeat_with_a_huge_count_is_a_template_error_not_a_panic() {
    assert_budget_error(r#"{{ repeat 100000000000000 "x" }}"#, "repeat");
    assert_budget_error(r#"{{ repeat 2000000 "x" }}"#, "budget");
}

#[test]
fn a_message_over_the_size_budget_is_a_template_error() {
    // Each piece is within the per-value budget; the message as a whole is not.
    let piece = r#"{{ repeat 1000000 "x" }}"#;
    assert_budget_error(&piece.repeat(2), "longer than");
    assert_eq!(render_empty(piece).expect("1 MB is fine").len(), 1_000_000);
}

#[test]
fn printf_padding_over_the_limit_is_a_template_error() {
    assert_budget_error(r#"{{ printf "%99999999d" 1 }}"#, "over the limit");
    assert_budget_error(r#"{{ printf "%.99999999f" 1.5 }}"#, "over the limit");
    assert_budget_error(r#"{{ printf "%*d" 99999999 1 }}"#, "over the limit");
    assert_budget_error(
        r#"{{ printf "%999999999999999999999999999999999999999999d" 1 }}"#,
        "over the limit",
    );
    // Within the limit, Go's padding and argument indexes behave as before.
    assert_eq!(
        render_empty(r#"{{ printf "%5d|%-4s|%03[1]d|%%" 7 "ab" }}"#).expect("render"),
        "    7|ab  |007|%"
    );
}

#[test]
fn trunc_with_extreme_counts_keeps_the_string() {
    assert_eq!(
        render_empty(r#"{{ trunc 9223372036854775807 "abc" }}|{{ trunc (sub -9223372036854775807 1) "abc" }}|{{ trunc 1e300 "abc" }}"#)
            .expect("render"),
        "abc|abc|abc"
    );
}

#[test]
fn string_builders_that_would_explode_are_refused_before_building() {
    // Each doubles its input; twenty rounds of 1 KB would be 1 GB.
    let mut template = String::from(r#"{{ $s := repeat 1024 "x" }}"#);
    for _ in 0..20 {
        template.push_str(r#"{{ $s = replace "x" "xx" $s }}"#);
    }
    assert_budget_error(&template, "replace");
    assert_budget_error(
        r#"{{ $l := splitList "," (repeat 5000 "a,") }}{{ join (repeat 1000000 "-") $l }}"#,
        "join",
    );
    assert_budget_error(
        r#"{{ regexReplaceAll "" (repeat 100000 "x") (repeat 1000 "$0") }}"#,
        "regexReplaceAll",
    );
    assert_budget_error(
        r#"{{ regexReplaceAllLiteral "" (repeat 100000 "x") (repeat 1000 "y") }}"#,
        "regexReplaceAllLiteral",
    );
    assert_budget_error(r#"{{ splitList "" (repeat 20000 "x") }}"#, "items");
}

#[test]
fn work_in_a_long_range_is_bounded() {
    // Within every per-value budget, but 200 MB of results in all.
    assert_budget_error(
        r#"{{ range 200 }}{{ $x := repeat 1000000 "x" }}{{ end }}"#,
        "in all",
    );
    assert_budget_error(r#"{{ range 100000000 }}{{ end }}"#, "range ran more than");
}

#[test]
fn a_template_over_the_size_limit_is_refused() {
    let big = "x".repeat(tagsmith_git_commit::MAX_TEMPLATE_BYTES + 1);
    let err = MessageTemplate::parse(&big).expect_err("too big");
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[test]
fn split_list_with_an_empty_separator_splits_characters_as_go_does() {
    assert_eq!(
        render_empty(
            r#"{{ splitList "" "aé" }}|{{ len (splitList "" "") }}|{{ splitList "," "" }}"#
        )
        .expect("render"),
        "[a é]|0|[]"
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    /// Pieces of templates: functions with awkward arguments (huge, negative, empty,
    /// wrong types), data paths, pipes, control structures.
    fn piece() -> impl Strategy<Value = String> {
        let number = prop_oneof![
            Just("0".to_string()),
            Just("-1".to_string()),
            Just("9223372036854775807".to_string()),
            Just("-9223372036854775808".to_string()),
            Just("100000000000000".to_string()),
            Just("1e300".to_string()),
            Just("3".to_string()),
            Just("-3".to_string()),
        ];
        let text = prop_oneof![
            Just(r#""""#.to_string()),
            Just(r#""x""#.to_string()),
            Just(r#""a,b""#.to_string()),
            Just(r#""$1$0""#.to_string()),
            Just(r#""%*d%99999999s%[9]d%.*f""#.to_string()),
            Just(r#""(""#.to_string()),
            Just(r#""é""#.to_string()),
            Just(".Changed.Changes".to_string()),
            Just(".Values".to_string()),
            Just(".AutomationObject".to_string()),
            Just("nil".to_string()),
            Just("true".to_string()),
        ];
        let arg = prop_oneof![number, text];
        let function = prop::sample::select(vec![
            "repeat",
            "trunc",
            "replace",
            "join",
            "splitList",
            "printf",
            "print",
            "println",
            "html",
            "js",
            "urlquery",
            "regexReplaceAll",
            "regexReplaceAllLiteral",
            "regexSplit",
            "regexFindAll",
            "regexFind",
            "regexMatch",
            "upper",
            "title",
            "quote",
            "squote",
            "b64enc",
            "b64dec",
            "sha256sum",
            "uniq",
            "sortAlpha",
            "has",
            "first",
            "last",
            "default",
            "coalesce",
            "ternary",
            "add",
            "mul",
            "div",
            "mod",
            "sub",
            "max",
            "min",
            "add1",
            "index",
            "slice",
            "len",
            "toString",
            "nospace",
        ]);
        (function, prop::collection::vec(arg, 0..4))
            .prop_map(|(f, args)| format!("({f} {})", args.join(" ")))
    }

    /// One action, the second piece (if any) piped from the first.
    fn action() -> impl Strategy<Value = String> {
        (piece(), prop::option::of(piece())).prop_map(|(a, b)| match b {
            Some(b) => format!(
                "{{{{ {a} | {} }}}}",
                b.trim_start_matches('(').trim_end_matches(')')
            ),
            None => format!("{{{{ {a} }}}}"),
        })
    }

    fn template() -> impl Strategy<Value = String> {
        let block = prop_oneof![
            action(),
            (piece(), action()).prop_map(|(p, a)| format!("{{{{ range {p} }}}}{a}{{{{ end }}}}")),
            (piece(), action())
                .prop_map(|(p, a)| format!("{{{{ if {p} }}}}{a}{{{{ else }}}}x{{{{ end }}}}")),
            (piece(), action())
                .prop_map(|(p, a)| format!("{{{{ with $v := {p} }}}}{a}{{{{ $v }}}}{{{{ end }}}}")),
            Just("text ".to_string()),
        ];
        prop::collection::vec(block, 1..5).prop_map(|blocks| blocks.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn random_small_templates_render_or_fail_without_panicking(t in template()) {
            let vectors = vectors();
            for data in [data(&vectors), legacy_data(&vectors)] {
                if let Ok(parsed) = MessageTemplate::parse_legacy(&t) {
                    if let Ok(message) = parsed.render(&data) {
                        prop_assert!(message.len() <= tagsmith_git_commit::MAX_MESSAGE_BYTES);
                    }
                }
            }
        }
    }
}
