//! Property: the output differs from the input only inside marked scalars. Documents are
//! generated with random styles, comments, indentation, line endings and markers; every line
//! without an applicable marker must come out identical, and every marked line must equal
//! the input line with only the value replaced.

use proptest::prelude::*;
use std::path::Path;
use tagsmith_marker_setter::{rewrite_str, Policies};

#[derive(Debug, Clone)]
struct Line {
    indent: usize,
    key: String,
    value: String,
    quote: u8,
    marker: Option<&'static str>,
    trailing: String,
}

fn line() -> impl Strategy<Value = Line> {
    (
        0usize..6,
        "[a-z][a-zA-Z0-9_]{0,8}",
        "[a-z0-9]([a-z0-9./:-]{0,20}[a-z0-9])?",
        0u8..3,
        prop_oneof![
            Just(None),
            Just(Some("ns:app")),
            Just(Some("ns:app:tag")),
            Just(Some("ns:app:name")),
            Just(Some("ns:missing")),
        ],
        "[ \t]{0,2}",
    )
        .prop_map(|(indent, key, value, quote, marker, trailing)| Line {
            indent,
            key,
            value,
            quote,
            marker,
            trailing,
        })
}

fn render(l: &Line, value: &str) -> String {
    let v = match l.quote {
        1 => format!("'{value}'"),
        2 => format!("\"{value}\""),
        _ => value.to_string(),
    };
    let comment = match l.marker {
        Some(m) => format!(" # {{\"$imagepolicy\": \"{m}\"}}"),
        None => " # plain comment".into(),
    };
    format!(
        "{}{}: {v}{comment}{}",
        " ".repeat(l.indent),
        l.key,
        l.trailing
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn only_marked_scalars_change(lines in proptest::collection::vec(line(), 1..25), crlf in any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        // Flat mapping under one parent: every key unique so the YAML is valid.
        let mut input = String::from("root:\n");
        let mut seen = std::collections::HashSet::new();
        let lines: Vec<Line> = lines.into_iter().filter(|l| seen.insert(l.key.clone())).collect();
        for l in &lines {
            input.push_str(&render(&Line { indent: 2, ..l.clone() }, &l.value));
            input.push_str(eol);
        }
        let policies = Policies::from_map([("ns:app", "reg.example.com/team/app:9.9.9")]).unwrap();
        let out = rewrite_str(input.as_bytes(), Path::new("p.yaml"), &policies);
        let output = out.new_content.map(|c| String::from_utf8(c).unwrap()).unwrap_or_else(|| input.clone());
        let mut expected = String::from("root:\n");
        for l in &lines {
            let new = match l.marker {
                Some("ns:app") => "reg.example.com/team/app:9.9.9",
                Some("ns:app:tag") => "9.9.9",
                Some("ns:app:name") => "reg.example.com/team/app",
                _ => l.value.as_str(),
            };
            expected.push_str(&render(&Line { indent: 2, ..l.clone() }, new));
            expected.push_str(eol);
        }
        prop_assert_eq!(output, expected);
    }
}

use tagsmith_marker_setter::fuzz_rewrite as fuzz_one;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_one(&data);
    }

    #[test]
    fn yamlish_text_never_panics(text in "(([ -]{0,4}[a-z:\"'#{}\\[\\],&*|>-]{0,6} ?)(# \\{\"\\$imagepolicy\": \"ns:app(:tag)?\"\\})?\r?\n){0,12}") {
        fuzz_one(text.as_bytes());
    }
}
