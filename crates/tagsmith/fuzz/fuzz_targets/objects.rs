//! Fuzzes reading repository content as Flux objects, as a hostile pull request writes it:
//! the YAML reader (depth, aliases, merge keys, invalid UTF-8), the CRD reader, the
//! kustomize rules with postBuild substitution, and `check`. The input is split into files
//! at NUL bytes, the first named `kustomization.yaml` (so the kustomize rules run), the
//! rest `clusters/N.yaml`.
//!
//! What must hold for any input: no panic, no stack overflow, no runaway memory (libFuzzer's
//! RSS limit), and every error one bounded line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tagsmith::error::MAX_MESSAGE_CHARS;
use tagsmith::sources::{load_repo, RepoFiles};

fuzz_target!(|data: &[u8]| {
    let parts: Vec<&[u8]> = data.split(|b| *b == 0).take(8).collect();
    let texts: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let names: Vec<String> = (0..texts.len())
        .map(|i| {
            if i == 0 {
                "kustomization.yaml".to_string()
            } else {
                format!("clusters/{i}.yaml")
            }
        })
        .collect();
    let repo = RepoFiles::from_files(names.iter().map(String::as_str).zip(texts.iter().map(String::as_str)));
    let loaded = load_repo(&repo);
    for failure in &loaded.objects.failures {
        let message = &failure.error.message;
        assert!(!message.contains('\n'), "{message:?}");
        assert!(message.chars().count() <= MAX_MESSAGE_CHARS + 3, "{}", message.len());
    }
    // Raw bytes too (the reader reports invalid UTF-8 rather than skipping it).
    let mut objects = tagsmith::crd::FluxObjects::default();
    objects.add_bytes(std::path::Path::new("raw.yaml"), data);
    let report = tagsmith::check::check_repo(&repo);
    for finding in &report.findings {
        assert!(!finding.message.contains('\n'), "{:?}", finding.message);
    }
});
