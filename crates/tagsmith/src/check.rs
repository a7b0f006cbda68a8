//! `check`: the mistakes a CI gate should catch before Flux silently skips them, read as
//! the clusters would have the objects ([`crate::sources`]) from one safe read of the
//! repository's YAML files:
//!
//! - objects that cannot be used (a bad range, a name Kubernetes refuses, a duplicate
//!   definition, an unresolved variable), and Flux image objects no Kustomization applies;
//! - markers naming a policy that does not exist, or that no automation's `update.path`
//!   covers (Flux never updates them), and markers in a tree with no automation at all;
//! - an image of a policy's repository written without a marker (a manifest copied without
//!   its comment), as a YAML value: not inside a block scalar (a Helm `values: |` string,
//!   where no marker could work), and not where a marked kustomize `images:` entry of a
//!   kustomization that applies the file overrides it.
//!
//! It never passes silently: the report says how many files, markers, policies and
//! automations it checked.

use crate::crd::FluxObjects;
use crate::sources::{load_repo, RepoFiles};
use crate::yaml::{parse_documents, Node};
use crate::RunError;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tagsmith_marker_setter::{rewrite_str, yaml_lines, Policies};
use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// The token a marker holds.
const MARKER: &str = "$imagepolicy";

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// File, relative to the repository root.
    pub path: String,
    /// 1-based line (0: the whole file).
    pub line: usize,
    /// `unmarked_image`, `unknown_policy`, `marker_outside_update_path`, `no_automation`,
    /// `not_applied`, an object error's code, or another setter warning's code.
    pub code: String,
    /// What is wrong.
    pub message: String,
}

/// What was checked: a check that found nothing says how much it looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckSummary {
    /// YAML files read.
    pub files: usize,
    /// `$imagepolicy` markers found.
    pub markers: usize,
    /// ImagePolicies read.
    pub policies: usize,
    /// ImageUpdateAutomations read.
    pub automations: usize,
}

/// The findings and what was checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// Every finding, by file and line.
    pub findings: Vec<Finding>,
    /// What was checked.
    pub summary: CheckSummary,
}

/// The update paths of the automations, relative, without `./`.
fn update_paths(objects: &FluxObjects) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = objects
        .automations
        .iter()
        .map(|a| {
            Path::new(&a.update_path)
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect()
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Scalars written as plain or quoted values (block scalars left out), with their lines.
#[derive(Default)]
struct Values {
    found: Vec<(String, usize)>,
}

impl MarkedEventReceiver for Values {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if let Event::Scalar(value, style, ..) = ev {
            if !matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
                self.found.push((value, mark.line()));
            }
        }
    }
}

/// Images a kustomization's marked `images:` entries override, for the files it applies:
/// `file -> image names` (`name` and `newName` of each marked entry).
fn overridden_images(repo: &RepoFiles) -> BTreeMap<PathBuf, BTreeSet<String>> {
    let mut covered: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (path, _) in repo.iter() {
        let is_kustomization = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| crate::kustomize::KUSTOMIZATION_FILES.contains(&n));
        let Some(text) = repo.text(path).filter(|_| is_kustomization) else {
            continue;
        };
        let Ok(docs) = parse_documents(text) else {
            continue;
        };
        let lines = yaml_lines(text);
        let marked_line = |n: usize| {
            lines
                .get(n.wrapping_sub(1))
                .is_some_and(|l| l.contains(MARKER))
        };
        let mut names = BTreeSet::new();
        for doc in &docs {
            let Some(Node::Seq(entries, _)) = doc.get("images") else {
                continue;
            };
            for entry in entries {
                let Node::Map(fields, line) = entry else {
                    continue;
                };
                let marked =
                    marked_line(*line) || fields.iter().any(|(_, v)| marked_line(v.line()));
                if !marked {
                    continue;
                }
                for key in ["name", "newName"] {
                    if let Some(name) = entry.get(key).and_then(Node::as_str) {
                        names.insert(name.to_string());
                    }
                }
            }
        }
        if names.is_empty() {
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        for file in crate::kustomize::applied_files(repo, &dir.display().to_string()).files {
            covered
                .entry(file.path)
                .or_default()
                .extend(names.iter().cloned());
        }
    }
    covered
}

/// Checks the checkout at `root`.
pub fn check(root: &Path) -> Result<CheckReport, RunError> {
    if !root.is_dir() {
        return Err(RunError::Config {
            message: format!("{}: not a directory", root.display()),
        });
    }
    Ok(check_repo(&RepoFiles::read(root)))
}

/// [`check`] over files already read.
pub fn check_repo(repo: &RepoFiles) -> CheckReport {
    let loaded = load_repo(repo);
    let objects = &loaded.objects;
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
    for warning in &loaded.read.warnings_unapplied {
        let path = warning.split(' ').next().unwrap_or_default().to_string();
        findings.push(Finding {
            path,
            line: 0,
            code: "not_applied".into(),
            message: warning.clone(),
        });
    }
    // Every policy name anyone defined (a failed one included: its own finding says why),
    // with a placeholder image, so the setter reports only markers naming none of them.
    let mut known: BTreeSet<String> = objects.policies.iter().map(|p| p.origin.key()).collect();
    known.extend(
        objects
            .failures
            .iter()
            .filter(|f| f.kind == "ImagePolicy")
            .filter_map(|f| f.object.clone()),
    );
    let placeholder = Policies::from_map(
        known
            .iter()
            .filter(|k| k.split(':').count() == 2)
            .map(|k| (k.clone(), "example.invalid/check:0".to_string())),
    )
    .unwrap_or_default();
    let images: BTreeSet<String> = objects
        .policies
        .iter()
        .filter_map(|p| {
            objects
                .repositories
                .iter()
                .find(|r| r.origin.key == p.repository)
                .map(|r| r.image.clone())
        })
        .collect();
    let paths = update_paths(objects);
    let covered_by_path = |file: &Path| paths.iter().any(|p| file.starts_with(p));
    let overridden = overridden_images(repo);
    let mut summary = CheckSummary {
        files: 0,
        markers: 0,
        policies: objects.policies.len(),
        automations: objects.automations.len(),
    };
    let mut markers_outside: Vec<(String, usize)> = Vec::new();
    for (path, bytes) in repo.iter() {
        summary.files += 1;
        let display = path.display().to_string();
        let marked = memchr::memmem::find(bytes, MARKER.as_bytes()).is_some();
        if marked {
            let outcome = rewrite_str(bytes, path, &placeholder);
            let markers: usize = outcome
                .objects
                .iter()
                .map(|o| o.changes.len())
                .sum::<usize>()
                + outcome
                    .warnings
                    .iter()
                    .filter(|w| w.code == "unknown_policy")
                    .count();
            summary.markers += markers;
            if !covered_by_path(path) && markers > 0 {
                markers_outside.push((display.clone(), markers));
            }
            findings.extend(outcome.warnings.into_iter().map(|w| Finding {
                path: display.clone(),
                line: w.line,
                code: w.code,
                message: w.message,
            }));
        }
        if images.is_empty() || !covered_by_path(path) {
            continue;
        }
        let Some(text) = repo.text(path) else {
            continue;
        };
        let mut values = Values::default();
        if tagsmith_marker_setter::read_yaml_events(text, &mut values).is_err() {
            continue;
        }
        let lines = yaml_lines(text);
        let skip = overridden.get(path);
        for (value, line) in values.found {
            let Some(image) = images.iter().find(|image| {
                value
                    .strip_prefix(image.as_str())
                    .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('@'))
            }) else {
                continue;
            };
            let has_marker = lines
                .get(line.wrapping_sub(1))
                .is_some_and(|l| l.contains(MARKER));
            if has_marker || skip.is_some_and(|names| names.contains(image)) {
                continue;
            }
            findings.push(Finding {
                path: display.clone(),
                line,
                code: "unmarked_image".into(),
                message: format!(
                    "{image} is used here without a $imagepolicy marker, so automation will not update it"
                ),
            });
        }
    }
    if objects.automations.is_empty() && summary.markers > 0 {
        findings.push(Finding {
            path: String::new(),
            line: 0,
            code: "no_automation".into(),
            message: format!(
                "{} marker(s) but no ImageUpdateAutomation: nothing would ever update them",
                summary.markers
            ),
        });
    } else {
        for (path, count) in markers_outside {
            findings.push(Finding {
                path,
                line: 0,
                code: "marker_outside_update_path".into(),
                message: format!(
                    "{count} marker(s) outside every ImageUpdateAutomation's spec.update.path: Flux never updates them"
                ),
            });
        }
    }
    findings.sort_by(|a, b| (&a.path, a.line, &a.code).cmp(&(&b.path, b.line, &b.code)));
    findings.dedup();
    CheckReport { findings, summary }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FLUX: &str = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: flux-system}\nspec: {image: reg.example.com/team/app}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: app, namespace: flux-system}\nspec:\n  imageRepositoryRef: {name: app}\n  policy: {semver: {range: '>=1.0.0'}}\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: apps, namespace: flux-system}\nspec:\n  git: {commit: {author: {name: bot, email: bot@example.com}}}\n  update: {path: ./apps, strategy: Setters}\n";

    fn check_files(files: &[(&str, &str)]) -> CheckReport {
        let mut all = vec![("flux.yaml", FLUX)];
        all.extend_from_slice(files);
        check_repo(&RepoFiles::from_files(all))
    }

    fn codes(report: &CheckReport) -> Vec<(&str, usize, &str)> {
        report
            .findings
            .iter()
            .map(|f| (f.path.as_str(), f.line, f.code.as_str()))
            .collect()
    }

    #[test]
    fn a_clean_tree_has_no_findings_and_says_what_it_checked() {
        let report = check_files(&[(
            "apps/ok.yaml",
            "image: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\nother: reg.example.com/team/application:1.0.0\n",
        )]);
        assert_eq!(codes(&report), []);
        assert_eq!(
            report.summary,
            CheckSummary {
                files: 2,
                markers: 1,
                policies: 1,
                automations: 1
            }
        );
    }

    #[test]
    fn finds_unmarked_images_and_unknown_policies() {
        let report = check_files(&[
            (
                "apps/copy.yaml",
                "spec:\n  image: reg.example.com/team/app:1.0.0\n  # image: reg.example.com/team/app:0.1.0 (a comment)\n",
            ),
            ("apps/pinned.yaml", "image: \"reg.example.com/team/app@sha256:abc\"\n"),
            (
                "apps/typo.yaml",
                "image: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:ap\"}\n",
            ),
        ]);
        assert_eq!(
            codes(&report),
            [
                ("apps/copy.yaml", 2, "unmarked_image"),
                ("apps/pinned.yaml", 1, "unmarked_image"),
                ("apps/typo.yaml", 1, "unknown_policy"),
            ]
        );
        assert!(report.findings[2].message.contains("flux-system:ap"));
    }

    #[test]
    fn an_image_inside_a_block_scalar_is_not_a_finding() {
        // A Helm values string: no marker could update it, so none is asked for.
        let report = check_files(&[(
            "apps/release.yaml",
            "spec:\n  values: |\n    image: reg.example.com/team/app:1.0.0\n",
        )]);
        assert_eq!(codes(&report), []);
    }

    #[test]
    fn an_image_a_marked_kustomize_images_entry_overrides_is_not_a_finding() {
        let report = check_files(&[
            (
                "apps/kustomization.yaml",
                "resources: [deployment.yaml]\nimages:\n  - name: reg.example.com/team/app\n    newTag: 1.2.0 # {\"$imagepolicy\": \"flux-system:app:tag\"}\n",
            ),
            ("apps/deployment.yaml", "image: reg.example.com/team/app:1.0.0\n"),
            // A sibling folder the kustomization does not apply keeps its finding.
            ("apps/other/deployment.yaml", "image: reg.example.com/team/app:1.0.0\n"),
        ]);
        assert_eq!(
            codes(&report),
            [("apps/other/deployment.yaml", 1, "unmarked_image")]
        );
    }

    #[test]
    fn markers_without_any_automation_are_a_finding_not_a_silent_pass() {
        let repo = RepoFiles::from_files([
            (
                "flux.yaml",
                FLUX.split(
                    "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation",
                )
                .next()
                .unwrap(),
            ),
            (
                "apps/ok.yaml",
                "image: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n",
            ),
        ]);
        let report = check_repo(&repo);
        assert_eq!(codes(&report), [("", 0, "no_automation")]);
        assert_eq!(report.summary.automations, 0);
    }

    #[test]
    fn markers_outside_every_update_path_are_a_finding() {
        let report = check_files(&[(
            "elsewhere.yaml",
            "image: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n",
        )]);
        assert_eq!(
            codes(&report),
            [("elsewhere.yaml", 0, "marker_outside_update_path")]
        );
    }

    #[test]
    fn lone_carriage_returns_end_lines_as_in_yaml() {
        // An unmarked copy after a marked line on an old-Mac file: its own line, its own
        // number.
        let report = check_files(&[(
            "apps/mac.yaml",
            "a: reg.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\rb: reg.example.com/team/app:1.0.0\r",
        )]);
        assert_eq!(codes(&report), [("apps/mac.yaml", 2, "unmarked_image")]);
    }

    #[test]
    fn a_broken_object_is_reported_with_the_rest() {
        let report = check_files(&[(
            "apps/bad-policy.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: bad, namespace: flux-system}\nspec:\n  imageRepositoryRef: {name: app}\n  policy: {semver: {range: '>>1'}}\n",
        ), ("apps/copy.yaml", "image: reg.example.com/team/app:1.0.0\n")]);
        assert_eq!(
            codes(&report),
            [
                ("apps/bad-policy.yaml", 6, "invalid_range"),
                ("apps/copy.yaml", 1, "unmarked_image"),
            ]
        );
    }
}
