//! `check`: the classic mistakes a CI gate should catch before Flux silently skips them.
//!
//! - an image reference to a policy's repository without a `$imagepolicy` marker (a
//!   manifest copied without its comment), found as a line naming the repository followed
//!   by `:` or `@` and carrying no marker;
//! - a marker naming a policy that does not exist.

use crate::crd::FluxObjects;
use crate::RunError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// File, relative to the repository root.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// `unmarked_image` or `unknown_policy` (or another setter warning code).
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// Checks every automation's `update.path` under `root`.
pub fn check(root: &Path) -> Result<Vec<Finding>, RunError> {
    let objects = FluxObjects::load_tree(root)?;
    objects.validate()?;
    let images: BTreeMap<String, String> = objects
        .policies
        .iter()
        .filter_map(|p| {
            let repo = objects
                .repositories
                .iter()
                .find(|r| r.origin.key() == p.repository)?;
            Some((p.origin.key(), repo.image.clone()))
        })
        .collect();
    let mut findings = Vec::new();
    let mut paths: Vec<String> = objects
        .automations
        .iter()
        .map(|a| a.update_path.clone())
        .collect();
    paths.sort();
    paths.dedup();
    for update_path in paths {
        let base = root.join(&update_path);
        // Markers naming unknown policies: the setter reports them; placeholder images make
        // the plan compute without touching anything.
        let policies = Policies::from_map(
            images
                .keys()
                .map(|k| (k.clone(), "example.invalid/check:0")),
        )?;
        let plan = plan_tree(&base, &policies, &TreeOptions::default())?;
        let prefix = update_path.trim_start_matches("./").trim_matches('/');
        let rel = |p: &str| {
            if prefix.is_empty() || prefix == "." {
                p.to_string()
            } else {
                format!("{prefix}/{p}")
            }
        };
        for w in &plan.result().warnings {
            findings.push(Finding {
                path: rel(&w.path),
                line: w.line,
                code: w.code.clone(),
                message: w.message.clone(),
            });
        }
        // Unmarked references to policy images.
        for entry in ignore::WalkBuilder::new(&base)
            .standard_filters(false)
            .hidden(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build()
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if !path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let display = rel(&path.strip_prefix(&base).unwrap_or(path).to_string_lossy());
            for (i, line) in text.lines().enumerate() {
                if line.contains("$imagepolicy") || line.trim_start().starts_with('#') {
                    continue;
                }
                for image in images.values() {
                    let mut rest = line;
                    while let Some(at) = rest.find(image.as_str()) {
                        let after = rest[at + image.len()..].chars().next();
                        if matches!(after, Some(':') | Some('@')) {
                            findings.push(Finding {
                                path: display.clone(),
                                line: i + 1,
                                code: "unmarked_image".into(),
                                message: format!("{image} is used here without a $imagepolicy marker, so automation will not update it"),
                            });
                            break;
                        }
                        rest = &rest[at + image.len()..];
                    }
                }
            }
        }
    }
    findings.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    findings.dedup();
    Ok(findings)
}
