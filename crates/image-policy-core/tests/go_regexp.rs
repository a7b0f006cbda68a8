//! Go-regexp parity (issue 12.7): Flux compiles `filterTags.pattern` and `exclusionList`
//! with Go's `regexp.Compile`, so a pattern Go refuses must fail the policy here too, with
//! Go's message.
//!
//! `testdata/flux-upstream/go-regexp.json` holds patterns with the answers Go gave (accepted
//! or Go's error, and where an accepted pattern matches a few probe strings). The first
//! tests check tagsmith against those answers without Go; the known differences are listed
//! here, and a test fails when that list stops being exact. The others ask Go itself (the
//! harness in `tests/go/regexp-oracle`): the committed answers are still Go's, Go's own
//! regexp test patterns and a seeded set of generated patterns get Go's verdict, and the
//! `\p{...}` names are Go's. `TAGSMITH_REGENERATE=1` rewrites the committed answers.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use tagsmith_image_policy_core::{Exclusions, PolicyError};

/// Patterns Go accepts that the `regex` crate refuses, so tagsmith refuses them (with the
/// `regex` crate's message). For the docs: octal escapes, `\Q...\E`, braces that are not
/// counts (Go reads them as literals), group names starting with a digit or used twice,
/// repeated or both-ways flags, `(?)`, `\p{^...}`, `[\d-z]`, `\b{x}`, a repetition
/// operator after a flag group (Go applies it to what precedes the group), counted
/// repetitions of big Unicode classes (the `regex` crate's 10 MB size limit) and nesting
/// deeper than 250 (its nesting limit; Go's is 1000).
const REGEX_CRATE_REFUSES: &[&str] = &[
    r"\0",
    r"\012",
    r"\12",
    r"\Qa*\E",
    r"\Q",
    r"a\Q.\E+",
    "a{,5}",
    "a{x}",
    "a{",
    "{",
    "a{1,2",
    "(?P<1>x)",
    "(?P<1a>x)",
    "(?P<a>x)(?P<a>y)",
    "(?ii)a",
    "(?i-i)a",
    "(?)a",
    r"\p{^Greek}",
    r"\P{^Greek}",
    r"[\d-z]",
    r"\b{x}",
    r"\pL{1000}",
    r"\w{1000}",
    r"[\w\d]{1000}",
    "a(?i)*",
    "a*(?i)*",
    "nesting-300",
];

/// Patterns both accept that match differently (Go's meaning first). For the docs: inside
/// brackets Go has no nested classes and no set operations (`[a[b]]` is `[a[b]` then `]`;
/// `&&`, `~~` are literal characters); `\<`, `\>` are the characters `<`, `>` in Go and word
/// boundaries in `regex`; `\b{start}` is `\b` then the literal `{start}` in Go; `a{01}`,
/// `a{ 2}`, `a{2 }` are literal text in Go and counts in `regex`.
const MEANING_DIFFERS: &[&str] = &[
    "[a[b]]",
    "[a&&b]",
    "[a~~b]",
    "[[:alpha:]--a]",
    r"\<a",
    r"a\>",
    r"\b{start}a",
    r"\b{end}",
    "a{01}",
    "a{1,02}",
    "a{ 2}",
    "a{2 }",
];

/// Patterns Go refuses for its size and depth limits, which tagsmith does not model: the
/// `regex` crate refuses them first, with its own message.
const REFUSED_BY_THE_REGEX_CRATE_LIMITS: &[&str] =
    &["deep-1000", "deep-star-1000", "long-1000", "runes-27000"];

fn corpus_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/flux-upstream/go-regexp.json")
}

fn corpus() -> Value {
    serde_json::from_str(&std::fs::read_to_string(corpus_path()).unwrap()).unwrap()
}

/// The pattern of a case: `pattern`, or `build` (pieces repeated, for patterns too long to
/// write out; named by `name`, and quoted as `<pattern>` in `goError`).
fn pattern_of(case: &Value) -> String {
    if let Some(p) = case["pattern"].as_str() {
        return p.to_string();
    }
    case["build"]
        .as_array()
        .unwrap()
        .iter()
        .map(|piece| {
            piece[0]
                .as_str()
                .unwrap()
                .repeat(piece[1].as_u64().unwrap() as usize)
        })
        .collect()
}

fn label(case: &Value) -> String {
    case["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| pattern_of(case))
}

/// tagsmith's verdict, through the public API (an exclusion list compiles each pattern the
/// way a filter pattern does): `Ok`, or the reason of the `invalid_regex` error.
fn ours(pattern: &str) -> Result<(), String> {
    match Exclusions::new(&[pattern]) {
        Ok(_) => Ok(()),
        Err(PolicyError::InvalidRegex { reason, .. }) => Err(reason),
        Err(other) => panic!("{pattern:?}: unexpected {other:?}"),
    }
}

/// Whether tagsmith refused `pattern` the way Go does (its message is Go's).
fn refused_as_go(verdict: &Result<(), String>) -> Option<&str> {
    verdict
        .as_ref()
        .err()
        .map(String::as_str)
        .filter(|m| m.starts_with("error parsing regexp: "))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_pattern_go_refuses_is_refused_with_gos_message() {
    let mut other_message = BTreeSet::new();
    let mut refused = 0;
    for case in corpus()["cases"].as_array().unwrap() {
        if case["accepted"].as_bool().unwrap() {
            continue;
        }
        refused += 1;
        let pattern = pattern_of(case);
        let verdict = ours(&pattern);
        let go_error = case["goError"]
            .as_str()
            .unwrap()
            .replace("<pattern>", &pattern);
        match verdict {
            Ok(()) => panic!(
                "{}: Go refuses it ({go_error}), tagsmith accepts it",
                label(case)
            ),
            Err(reason) if reason == go_error => {}
            Err(_) => {
                other_message.insert(label(case));
            }
        }
    }
    assert!(refused >= 100, "the corpus lost its refused patterns");
    assert_eq!(other_message, set(REFUSED_BY_THE_REGEX_CRATE_LIMITS));
}

#[test]
fn patterns_go_accepts_compile_except_the_known_regex_crate_refusals() {
    let mut refused = BTreeSet::new();
    for case in corpus()["cases"].as_array().unwrap() {
        if !case["accepted"].as_bool().unwrap() {
            continue;
        }
        if let Err(reason) = ours(&pattern_of(case)) {
            assert!(
                refused_as_go(&Err(reason.clone())).is_none(),
                "{}: Go accepts it, tagsmith says Go would not: {reason}",
                label(case)
            );
            refused.insert(label(case));
        }
    }
    assert_eq!(refused, set(REGEX_CRATE_REFUSES));
}

#[test]
fn matches_agree_with_go_except_the_known_meaning_differences() {
    let mut differ = BTreeSet::new();
    let mut probed = 0;
    for case in corpus()["cases"].as_array().unwrap() {
        let Some(go_matches) = case["goMatches"].as_array() else {
            continue;
        };
        let pattern = pattern_of(case);
        let Ok(regex) = regex::Regex::new(&pattern) else {
            continue;
        };
        for (probe, want) in case["probes"].as_array().unwrap().iter().zip(go_matches) {
            probed += 1;
            let text = probe.as_str().unwrap();
            let mut locations = regex.capture_locations();
            let got: Value = match regex.captures_read(&mut locations, text) {
                None => Value::Null,
                Some(_) => (0..locations.len())
                    .flat_map(|i| match locations.get(i) {
                        Some((s, e)) => [s as i64, e as i64],
                        None => [-1, -1],
                    })
                    .collect(),
            };
            if &got != want {
                differ.insert(label(case));
            }
        }
    }
    assert!(probed >= 100, "the corpus lost its probes");
    assert_eq!(differ, set(MEANING_DIFFERS));
}

// ---- Against Go itself -------------------------------------------------------------------

fn oracle() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/go/regexp-oracle");
        tagsmith_testkit::tools::go_build(
            &src,
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            "regexp-oracle",
        )
    })
}

fn run_oracle(args: &[&str], input: Option<&Value>) -> Value {
    let mut child = Command::new(oracle())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        serde_json::to_writer(&mut stdin, input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "regexp-oracle {args:?} failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Go's answers for `patterns` (with probe strings): `(go version, answers)`.
fn ask_go(questions: &[(String, Vec<String>)]) -> (String, Vec<Value>) {
    let input: Value = questions
        .iter()
        .map(|(pattern, probes)| json!({"pattern": pattern, "probes": probes}))
        .collect();
    let out = run_oracle(&["compile"], Some(&input));
    let answers = out["answers"].as_array().unwrap().clone();
    assert_eq!(answers.len(), questions.len());
    (out["go"].as_str().unwrap().to_string(), answers)
}

fn assert_go_verdict(pattern: &str, answer: &Value, mismatches: &mut Vec<String>) {
    let verdict = ours(pattern);
    let go_error = answer["error"].as_str();
    let ok = match (
        answer["accepted"].as_bool().unwrap(),
        refused_as_go(&verdict),
    ) {
        (true, None) => true,
        (false, Some(ours)) => Some(ours) == go_error,
        _ => false,
    };
    if !ok {
        mismatches.push(format!(
            "{pattern:?}: Go {go_error:?}, tagsmith {verdict:?}"
        ));
    }
}

#[test]
fn committed_answers_are_what_go_says() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    let mut data = corpus();
    let cases = data["cases"].as_array_mut().unwrap();
    let questions: Vec<(String, Vec<String>)> = cases
        .iter()
        .map(|c| {
            let probes = c["probes"]
                .as_array()
                .map(|p| p.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (pattern_of(c), probes)
        })
        .collect();
    let (version, answers) = ask_go(&questions);
    let regenerate = std::env::var_os("TAGSMITH_REGENERATE").is_some();
    for (case, answer) in cases.iter_mut().zip(&answers) {
        let accepted = answer["accepted"].as_bool().unwrap();
        let mut want = case.clone();
        let fields = want.as_object_mut().unwrap();
        fields.remove("goError");
        fields.remove("goMatches");
        fields.insert("accepted".into(), json!(accepted));
        if accepted {
            if case["probes"].is_array() {
                fields.insert(
                    "goMatches".into(),
                    answer["probes"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into(),
                );
            }
        } else {
            // A built pattern is long: its message quotes it as `<pattern>`.
            let error = answer["error"].as_str().unwrap();
            let error = match case["build"].is_array() {
                true => error.replace(&pattern_of(case), "<pattern>"),
                false => error.to_string(),
            };
            fields.insert("goError".into(), json!(error));
        }
        if regenerate {
            *case = want;
        } else {
            assert_eq!(
                *case,
                want,
                "{}: the committed answer is not Go's",
                label(case)
            );
        }
    }
    if regenerate {
        data["go"] = json!(version);
        let mut text = String::from("{\n");
        text.push_str(&format!("  \"description\": {},\n", data["description"]));
        text.push_str(&format!("  \"go\": {},\n", data["go"]));
        text.push_str("  \"cases\": [\n");
        let cases = data["cases"].as_array().unwrap();
        for (i, case) in cases.iter().enumerate() {
            // One case a line, the question before Go's answer.
            let fields: Vec<String> = [
                "name",
                "pattern",
                "build",
                "probes",
                "accepted",
                "goError",
                "goMatches",
            ]
            .iter()
            .filter(|key| !case[**key].is_null())
            .map(|key| format!("{}: {}", json!(key), case[*key]))
            .collect();
            let comma = if i + 1 < cases.len() { "," } else { "" };
            text.push_str(&format!("    {{{}}}{comma}\n", fields.join(", ")));
        }
        text.push_str("  ]\n}\n");
        std::fs::write(corpus_path(), text).unwrap();
    }
}

#[test]
fn gos_own_test_patterns_get_gos_verdict() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    let goroot = Command::new(tagsmith_testkit::tools::find("go").expect("go"))
        .args(["env", "GOROOT"])
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    let goroot = String::from_utf8(goroot.stdout).unwrap();
    let patterns = run_oracle(&["go-tests", goroot.trim()], None);
    let questions: Vec<(String, Vec<String>)> = patterns
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p.as_str().unwrap().to_string(), Vec::new()))
        .collect();
    assert!(
        questions.len() >= 1000,
        "Go's test files gave {}",
        questions.len()
    );
    let (_, answers) = ask_go(&questions);
    let mut mismatches = Vec::new();
    for ((pattern, _), answer) in questions.iter().zip(&answers) {
        assert_go_verdict(pattern, answer, &mut mismatches);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A small seeded generator (xorshift), so a failure names a reproducible pattern.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn generated_patterns_get_gos_verdict() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    // Pieces of the syntax where Go and the `regex` crate part ways, and ordinary ones.
    const PIECES: &[&str] = &[
        "a",
        "b",
        "0",
        "7",
        "-",
        ",",
        ":",
        "^",
        "$",
        ".",
        "|",
        "(",
        ")",
        "(?:",
        "(?i)",
        "(?i",
        "(?-",
        "(?s-i:",
        "(?x)",
        "(?P<n>",
        "(?<n1>",
        "(?P<a.b>",
        "(?<",
        "(?P=",
        "*",
        "+",
        "?",
        "*?",
        "{",
        "}",
        "{2}",
        "{0}",
        "{1}",
        "{1,}",
        "{2,3}",
        "{0,1000}",
        "{600}",
        "{1001}",
        "{,5}",
        "{01}",
        "[",
        "]",
        "[^",
        "[:alpha:]",
        "[:^word:]",
        "[:foo:]",
        "&&",
        "--",
        "~~",
        r"\",
        r"\\",
        r"\d",
        r"\W",
        r"\pL",
        r"\pX",
        r"\p{Greek}",
        r"\p{greek}",
        r"\p{Emoji}",
        r"\p{^Lu}",
        r"\P",
        r"\p{",
        r"\x4",
        r"\x41",
        r"\x{10FFFF}",
        r"\x{110000}",
        r"\x{",
        r"\u0041",
        r"\0",
        r"\012",
        r"\1",
        r"\8",
        r"\Q",
        r"\E",
        r"\b",
        r"\B",
        r"\A",
        r"\z",
        r"\Z",
        r"\C",
        r"\<",
        r"\-",
        r"\.",
        r"\_",
        "é",
        " ",
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let questions: Vec<(String, Vec<String>)> = (0..12_000)
        .map(|_| {
            let len = 1 + rng.next() % 7;
            let pattern: String = (0..len).map(|_| rng.pick(PIECES)).collect();
            (pattern, Vec::new())
        })
        .collect();
    let (_, answers) = ask_go(&questions);
    let refused = answers.iter().filter(|a| a["accepted"] == false).count();
    assert!(
        refused > questions.len() / 5 && refused < questions.len() * 4 / 5,
        "Go refused {refused} of {}: the generator no longer mixes both",
        questions.len()
    );
    let mut mismatches = Vec::new();
    for ((pattern, _), answer) in questions.iter().zip(&answers) {
        assert_go_verdict(pattern, answer, &mut mismatches);
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        questions.len(),
        mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn unicode_class_names_are_gos() {
    if tagsmith_testkit::tools::missing(&["go"]) {
        return;
    }
    let names = run_oracle(&["unicode-names"], None);
    let names: Vec<String> = names["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect();
    let mut patterns = Vec::new();
    for name in &names {
        // The name as Go lists it, and spellings Go's canonicalization folds into it.
        patterns.push(format!(r"\p{{{name}}}"));
        patterns.push(format!(r"\P{{{}}}", name.to_lowercase()));
        patterns.push(format!(r"[\p{{^_{}}}]", name.to_uppercase()));
    }
    // Names the `regex` crate knows and Go does not (newer scripts, binary properties,
    // `sc=`/`gc=` forms, scripts whose Go key has an underscore).
    for name in [
        "Emoji",
        "Alphabetic",
        "White_Space",
        "sc=Greek",
        "gc=Lu",
        "Garay",
        "Todhri",
        "Old_Italic",
        "Nag_Mundari",
        "Caucasian_Albanian",
        "IsGreek",
        "L&",
        "",
    ] {
        patterns.push(format!(r"\p{{{name}}}"));
    }
    let questions: Vec<(String, Vec<String>)> =
        patterns.into_iter().map(|p| (p, Vec::new())).collect();
    let (_, answers) = ask_go(&questions);
    let mut mismatches = Vec::new();
    for ((pattern, _), answer) in questions.iter().zip(&answers) {
        assert_go_verdict(pattern, answer, &mut mismatches);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
