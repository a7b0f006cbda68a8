//! What a Flux `Kustomization` applies from a repository, by kustomize-controller's rules,
//! and its `postBuild` variable substitution (fluxcd/pkg `envsubst`).
//!
//! From `spec.path`: a folder with a `kustomization.yaml` (or `kustomization.yml`, or
//! `Kustomization`, first found in that order) contributes its `resources` (files, or
//! folders that hold a kustomization themselves) and `components`, recursively; a folder
//! without one contributes every `*.yaml`/`*.yml` below it, a subfolder with its own
//! kustomization counting as one base (not descended into). A kustomization's `namespace`
//! sets the namespace of everything it includes (the outermost wins, as kustomize's
//! transformer applies last).
//!
//! ```
//! use std::collections::BTreeMap;
//! use tagsmith::kustomize::substitute;
//! let vars = BTreeMap::from([("cluster".to_string(), "prod".to_string())]);
//! let (text, unresolved) = substitute("name: app-${cluster} ${region:=eu} $${literal}", &vars);
//! assert_eq!(text, "name: app-prod eu ${literal}");
//! assert!(unresolved.is_empty());
//! assert_eq!(substitute("${missing}", &vars).1, ["missing"]);
//! ```

use crate::sources::RepoFiles;
use crate::yaml::{parse_documents, Node};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The kustomization file names kustomize recognises, in the order it looks for them.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// One file a Kustomization applies, and the namespace a kustomization sets on its
/// objects (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedFile {
    /// Relative to the repository root.
    pub path: PathBuf,
    /// The namespace the innermost-to-outermost kustomizations set (outermost wins).
    pub namespace: Option<String>,
}

/// What a Flux Kustomization's `spec.path` applies, and what could not be followed.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The files, in kustomize's order, each once.
    pub files: Vec<AppliedFile>,
    /// Why something was not followed (remote bases, missing files), one line each.
    pub notes: Vec<String>,
}

/// `path` (relative, from a manifest) joined to the folder `dir` (relative to the
/// repository root), kept inside the repository: `None` for absolute paths and for `..`
/// that would leave it.
fn join_inside(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in dir.join(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The kustomization file of a folder, if it has one.
pub fn kustomization_file(repo: &RepoFiles, dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| repo.is_file(p))
}

/// Everything `path` (relative to the repository root) applies. The tree is the
/// repository's YAML files as the safe walk read them: symlinked folders and files outside
/// the repository are not in it, so nothing here follows them.
pub fn applied_files(repo: &RepoFiles, path: &str) -> Applied {
    let mut applied = Applied::default();
    let Some(rel) = join_inside(Path::new(""), path) else {
        applied.notes.push(format!(
            "{path:?} is outside the repository; nothing applied"
        ));
        return applied;
    };
    if repo.is_dir(&rel) {
        folder(repo, &rel, None, &mut applied, 0);
    } else {
        applied.notes.push(format!(
            "{} is not a folder of the repository with YAML files in it; nothing applied",
            rel.display()
        ));
    }
    applied
}

/// Bases nest; a cycle or an absurd depth stops here.
const MAX_BASE_DEPTH: usize = 32;

fn push_file(applied: &mut Applied, path: PathBuf, namespace: Option<&str>) {
    if !applied.files.iter().any(|f| f.path == path) {
        applied.files.push(AppliedFile {
            path,
            namespace: namespace.map(str::to_string),
        });
    }
}

fn folder(
    repo: &RepoFiles,
    dir: &Path,
    namespace: Option<&str>,
    applied: &mut Applied,
    depth: usize,
) {
    if depth > MAX_BASE_DEPTH {
        applied.notes.push(format!(
            "{}: bases nest deeper than {MAX_BASE_DEPTH} levels (a cycle?); not followed",
            dir.display()
        ));
        return;
    }
    match kustomization_file(repo, dir) {
        Some(file) => with_kustomization(repo, dir, &file, namespace, applied, depth),
        None => generated(repo, dir, namespace, applied, depth),
    }
}

/// A folder without a kustomization: what Flux's generator lists (every `.yaml`/`.yml`
/// below it, a subfolder with a kustomization as one base).
fn generated(
    repo: &RepoFiles,
    dir: &Path,
    namespace: Option<&str>,
    applied: &mut Applied,
    depth: usize,
) {
    let mut bases: Vec<PathBuf> = Vec::new();
    for rel in repo.under(dir) {
        // A file under a subfolder that has its own kustomization belongs to that base.
        let base = rel
            .ancestors()
            .skip(1)
            .take_while(|a| *a != dir && a.starts_with(dir))
            .filter(|a| kustomization_file(repo, a).is_some())
            .last()
            .map(Path::to_path_buf);
        match base {
            Some(b) => {
                if !bases.contains(&b) {
                    bases.push(b);
                }
            }
            None => {
                let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
                // Flux's generator takes `.yaml`/`.yml` files only (a file named
                // `Kustomization` is a kustomization, not a resource).
                if name
                    .as_deref()
                    .is_some_and(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
                {
                    push_file(applied, rel.clone(), namespace);
                }
            }
        }
    }
    for base in bases {
        folder(repo, &base, namespace, applied, depth + 1);
    }
}

fn string_list(node: &Node, key: &str) -> Vec<String> {
    match node.get(key) {
        Some(Node::Seq(items, _)) => items
            .iter()
            .filter_map(Node::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn with_kustomization(
    repo: &RepoFiles,
    dir: &Path,
    file: &Path,
    outer_namespace: Option<&str>,
    applied: &mut Applied,
    depth: usize,
) {
    let Some(text) = repo.text(file) else {
        applied
            .notes
            .push(format!("{}: not UTF-8 text; not followed", file.display()));
        return;
    };
    let doc = match parse_documents(text) {
        Ok(docs) => match docs.into_iter().next() {
            Some(doc) => doc,
            None => return,
        },
        Err((line, message)) => {
            applied.notes.push(format!(
                "{}:{line}: YAML does not parse: {message}; not followed",
                file.display()
            ));
            return;
        }
    };
    // kustomize applies the outermost kustomization's namespace last: it wins.
    let own = doc.get("namespace").and_then(Node::as_str);
    let namespace = outer_namespace.or(own);
    let mut entries = string_list(&doc, "resources");
    entries.extend(string_list(&doc, "bases"));
    entries.extend(string_list(&doc, "components"));
    for entry in entries {
        if entry.contains("://") || entry.starts_with("git@") || entry.starts_with("github.com/") {
            applied.notes.push(format!(
                "{}: remote base {entry} is not read (only this repository's files are)",
                file.display()
            ));
            continue;
        }
        let Some(rel) = join_inside(dir, &entry) else {
            applied.notes.push(format!(
                "{}: {entry:?} leaves the repository; not followed",
                file.display()
            ));
            continue;
        };
        if repo.is_file(&rel) {
            push_file(applied, rel, namespace);
        } else if repo.is_dir(&rel) {
            folder(repo, &rel, namespace, applied, depth + 1);
        } else {
            applied.notes.push(format!(
                "{}: {entry:?} is not a YAML file or folder of the repository (or is reached through a symlink); not followed",
                file.display()
            ));
        }
    }
}

fn var_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Flux's `postBuild` substitution of `text` with `vars`: `${var}`, and the defaulting
/// forms `${var:=default}`, `${var:-default}`, `${var=default}`, `${var-default}`;
/// `$${var}` is the escape for a literal `${var}`; `$var` without braces is left alone, as
/// fluxcd/pkg's envsubst leaves it. Returns the text and the variables it could not
/// resolve (undefined, or a form tagsmith does not evaluate), whose `${...}` stay in place.
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut unresolved = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(escaped) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_start) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = body_start.find('}') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let body = &body_start[..end];
        let whole = &tail[..end + 3];
        let (name, op, default) = match body.find([':', '=', '-']) {
            None => (body, "", ""),
            Some(i) => {
                let op_len = if body[i..].starts_with(":=") || body[i..].starts_with(":-") {
                    2
                } else {
                    1
                };
                (&body[..i], &body[i..i + op_len], &body[i + op_len..])
            }
        };
        let value = if !var_name_ok(name) {
            None
        } else {
            match (vars.get(name), op) {
                (Some(v), "" | ":=" | ":-") if !v.is_empty() || op.is_empty() => Some(v.clone()),
                (Some(v), "=" | "-") => Some(v.clone()),
                (Some(_), ":=" | ":-") => Some(default.to_string()),
                (None, ":=" | ":-" | "=" | "-") => Some(default.to_string()),
                _ => None,
            }
        };
        match value {
            // Flux removes newlines from values: a value never starts a new YAML line.
            Some(v) => out.push_str(&v.replace('\n', "")),
            None => {
                unresolved.push(name.to_string());
                out.push_str(whole);
            }
        }
        rest = &body_start[end + 1..];
    }
    out.push_str(rest);
    (out, unresolved)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    fn paths(applied: &Applied) -> Vec<(String, Option<String>)> {
        applied
            .files
            .iter()
            .map(|f| (f.path.display().to_string(), f.namespace.clone()))
            .collect()
    }

    #[test]
    fn a_kustomization_applies_its_resources_not_its_neighbours() {
        let dir = tree(&[
            ("apps/kustomization.yaml", "namespace: shop\nresources:\n  - deploy.yaml\n  - base\n  - https://example.com/remote.yaml\n"),
            ("apps/deploy.yaml", "kind: Deployment\n"),
            ("apps/unlisted-policy.yaml", "kind: ImagePolicy\n"),
            ("apps/base/Kustomization", "resources: [svc.yaml]\n"),
            ("apps/base/svc.yaml", "kind: Service\n"),
        ]);
        let applied = applied_files(&RepoFiles::read(dir.path()), "./apps");
        assert_eq!(
            paths(&applied),
            [
                ("apps/deploy.yaml".into(), Some("shop".into())),
                ("apps/base/svc.yaml".into(), Some("shop".into()))
            ]
        );
        assert!(
            applied.notes[0].contains("remote base"),
            "{:?}",
            applied.notes
        );
    }

    #[test]
    fn a_folder_without_one_applies_every_yaml_file_and_its_bases() {
        let dir = tree(&[
            ("clusters/prod/a.yaml", "kind: A\n"),
            ("clusters/prod/sub/b.yml", "kind: B\n"),
            ("clusters/prod/sub/notes.txt", "x"),
            (
                "clusters/prod/app/kustomization.yml",
                "resources: [c.yaml]\n",
            ),
            ("clusters/prod/app/c.yaml", "kind: C\n"),
            ("clusters/prod/app/d.yaml", "kind: D (not listed)\n"),
        ]);
        let applied = applied_files(&RepoFiles::read(dir.path()), "clusters/prod");
        let got: Vec<String> = paths(&applied).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            got,
            [
                "clusters/prod/a.yaml",
                "clusters/prod/sub/b.yml",
                "clusters/prod/app/c.yaml"
            ]
        );
    }

    #[test]
    fn paths_that_leave_the_repository_or_pass_symlinks_are_not_followed() {
        let dir = tree(&[("apps/kustomization.yaml", "resources: [../../etc, link]\n")]);
        std::os::unix::fs::symlink("/etc", dir.path().join("apps/link")).unwrap();
        let applied = applied_files(&RepoFiles::read(dir.path()), "apps");
        assert!(applied.files.is_empty());
        assert_eq!(applied.notes.len(), 2, "{:?}", applied.notes);
        assert!(applied_files(&RepoFiles::read(dir.path()), "../x").notes[0].contains("outside"));
    }

    #[test]
    fn cycles_stop() {
        let dir = tree(&[
            ("a/kustomization.yaml", "resources: [../b]\n"),
            ("b/kustomization.yaml", "resources: [../a]\n"),
        ]);
        let applied = applied_files(&RepoFiles::read(dir.path()), "a");
        assert!(
            applied.notes.iter().any(|n| n.contains("deeper")),
            "{:?}",
            applied.notes
        );
    }

    #[test]
    fn substitution_follows_fluxs_envsubst() {
        let vars = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("empty".to_string(), String::new()),
            ("nl".to_string(), "x\ny".to_string()),
        ]);
        let s = |t: &str| substitute(t, &vars);
        assert_eq!(
            s("${a}-${a:=9}-${b:=2}-${b:-3}-${b=4}-${b-5}").0,
            "1-1-2-3-4-5"
        );
        assert_eq!(s("${empty:-d}|${empty-d}").0, "d|");
        assert_eq!(s("$a $${a} $ {a}").0, "$a ${a} $ {a}");
        assert_eq!(s("${nl}").0, "xy");
        let (text, unresolved) = s("${undefined} ${a:?x} ${1bad}");
        assert_eq!(text, "${undefined} ${a:?x} ${1bad}");
        assert_eq!(unresolved, ["undefined", "a", "1bad"]);
        assert_eq!(s("unterminated ${a").0, "unterminated ${a");
    }
}
