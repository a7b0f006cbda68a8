//! `check`: the classic mistakes a CI gate should catch before Flux silently skips them.
//!
//! - an image reference to a policy's repository without a `$imagepolicy` marker (a
//!   manifest copied without its comment), found as a line naming the repository followed
//!   by `:` or `@` and carrying no marker;
//! - a marker naming a policy that does not exist.

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
    let objects = crate::sources::load_tree(root).objects;
    let images: BTreeMap<String, String> = objects
        .policies
        .iter()
        .filter_map(|p| {
            let repo = objects
                .repositories
                .iter()
                .find(|r| r.origin.key == p.repository)?;
            Some((p.origin.key(), repo.image.clone()))
        })
        .collect();
    let mut findings: Vec<Finding> = objects
        .failures
        .iter()
        .map(|f| Finding {
            path: f.error.file.clone().unwrap_or_default(),
            line: f.error.line.unwrap_or(0),
            code: f.error.code.clone(),
            message: f.error.message.clone(),
        })
        .collect();
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
        )
        .map_err(|e| RunError::Config {
            message: e.to_string(),
        })?;
        let plan =
            plan_tree(&base, &policies, &TreeOptions::default()).map_err(|e| RunError::Config {
                message: e.to_string(),
            })?;
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
            // Lines as YAML (and the setter's warnings above) count them.
            for (i, line) in tagsmith_marker_setter::yaml_lines(&text)
                .into_iter()
                .enumerate()
            {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FLUX: &str = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: flux-system}\nspec: {image: reg.example.com/team/app}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: app, namespace: flux-system}\nspec:\n  imageRepositoryRef: {name: app}\n  policy: {semver: {range: '>=1.0.0'}}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: apps, namespace: flux-system}\nspec:\n  git: {commit: {author: {name: bot, email: bot@example.com}}}\n  update: {path: ./apps, strategy: Setters}\n";

    fn tree(apps: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("flux.yaml"), FLUX).unwrap();
        std::fs::create_dir_all(dir.path().join("apps")).unwrap();
        for (name, text) in apps {
            std::fs::write(dir.path().join("apps").join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_clean_tree_has_no_findings() {
        let dir = tree(&[(
            "ok.yaml",
            "image: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\nother: reg.example.com/team/application:1.0.0\n",
        )]);
        assert_eq!(check(dir.path()).unwrap(), []);
    }

    #[test]
    fn finds_unmarked_images_and_unknown_policies() {
        let dir = tree(&[
            (
                "copy.yaml",
                "spec:\n  image: reg.example.com/team/app:1.0.0\n  # image: reg.example.com/team/app:0.1.0 (a comment)\n",
            ),
            (
                "pinned.yaml",
                "image: reg.example.com/team/app@sha256:abc\n",
            ),
            (
                "typo.yaml",
                "image: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:ap\"}\n",
            ),
        ]);
        let findings = check(dir.path()).unwrap();
        let got: Vec<(&str, usize, &str)> = findings
            .iter()
            .map(|f| (f.path.as_str(), f.line, f.code.as_str()))
            .collect();
        assert_eq!(got.len(), 3, "{findings:#?}");
        assert_eq!(got[0], ("apps/copy.yaml", 2, "unmarked_image"));
        assert_eq!(got[1], ("apps/pinned.yaml", 1, "unmarked_image"));
        assert_eq!(got[2].0, "apps/typo.yaml");
        assert_eq!(got[2].1, 1);
        assert!(
            findings[2].message.contains("flux-system:ap"),
            "{findings:#?}"
        );
    }

    #[test]
    fn lone_carriage_returns_end_lines_as_in_yaml() {
        // An unmarked copy after a marked line on an old-Mac file: its own line, its own
        // number (`str::lines` would see one line holding the marker, and skip it).
        let dir = tree(&[(
            "mac.yaml",
            "a: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\rb: reg.example.com/team/app:1.0.0\r",
        )]);
        let findings = check(dir.path()).unwrap();
        let got: Vec<(&str, usize, &str)> = findings
            .iter()
            .map(|f| (f.path.as_str(), f.line, f.code.as_str()))
            .collect();
        assert_eq!(got, [("apps/mac.yaml", 2, "unmarked_image")]);
    }

    #[test]
    fn files_outside_update_path_are_not_checked() {
        let dir = tree(&[]);
        std::fs::write(
            dir.path().join("elsewhere.yaml"),
            "image: reg.example.com/team/app:1.0.0\n",
        )
        .unwrap();
        assert_eq!(check(dir.path()).unwrap(), []);
    }
}
