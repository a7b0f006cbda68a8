//! Which files the Flux objects are read from, and why.
//!
//! The repository's YAML files are read once, through the setter's safe walk
//! (`tagsmith_marker_setter::walk_yaml_files`): regular files only (a FIFO named `x.yaml`
//! would block a read forever, `/dev/zero` behind a symlink would never end), no symlink
//! followed out of the repository, sizes capped, `.git` skipped. `check`, the loader and
//! the kustomize rules all work on that one view.

use crate::crd::{FluxObjects, KustomizationObject};
use crate::error::{ObjectCode, ObjectError};
use crate::yaml::{parse_documents, Node};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tagsmith_marker_setter::{walk_yaml_files, TreeOptions};

/// Every YAML file of a tree (`*.yaml`, `*.yml`, `Kustomization`), read once.
#[derive(Debug, Clone, Default)]
pub struct RepoFiles {
    files: BTreeMap<PathBuf, Vec<u8>>,
    /// What the walk skipped and why (special files, links out of the tree, sizes).
    pub warnings: Vec<String>,
}

impl RepoFiles {
    /// Reads the YAML files of `root`, confined to it.
    pub fn read(root: &Path) -> Self {
        let mut repo = RepoFiles::default();
        let opts = TreeOptions {
            confine_to: Some(root.to_path_buf()),
            ..TreeOptions::default()
        };
        match walk_yaml_files(root, &opts) {
            Ok(files) => {
                for item in files {
                    match item {
                        Ok(file) => {
                            repo.files
                                .insert(PathBuf::from(&file.relative_path), file.content);
                        }
                        Err(warning) => repo.warnings.push(warning.to_string()),
                    }
                }
            }
            Err(e) => repo.warnings.push(e.to_string()),
        }
        repo.warnings.sort();
        repo
    }

    /// A repository of these files (for tests and programs that hold the files in memory).
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        RepoFiles {
            files: files
                .into_iter()
                .map(|(p, t)| (PathBuf::from(p), t.as_bytes().to_vec()))
                .collect(),
            warnings: Vec::new(),
        }
    }

    /// The files, relative, in order, with their bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&PathBuf, &Vec<u8>)> {
        self.files.iter()
    }

    /// The text of a file (UTF-8, BOM removed), if it is one of the tree's.
    pub fn text(&self, rel: &Path) -> Option<&str> {
        let bytes = self.files.get(rel)?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        std::str::from_utf8(bytes).ok()
    }

    /// Whether `rel` is a YAML file of the tree.
    pub fn is_file(&self, rel: &Path) -> bool {
        self.files.contains_key(rel)
    }

    /// Whether `rel` is a folder holding YAML files (an empty `rel` is the root).
    pub fn is_dir(&self, rel: &Path) -> bool {
        self.under(rel).next().is_some()
    }

    /// The YAML files below `dir`, in order.
    pub fn under<'a>(&'a self, dir: &'a Path) -> impl Iterator<Item = &'a PathBuf> + 'a {
        self.files
            .keys()
            .filter(move |p| p.starts_with(dir) && p.as_path() != dir)
    }
}

/// One file the objects were read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFile {
    /// Relative to the tree read.
    pub path: String,
    /// Why it was read.
    pub reason: String,
}

/// Which files the objects were read from, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectsRead {
    /// How the files were chosen.
    pub mode: String,
    /// The files read.
    pub files: Vec<ObjectFile>,
    /// Files with Flux image objects that no Kustomization applies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings_unapplied: Vec<String>,
}

/// The objects of a tree, with the files they came from.
#[derive(Debug, Clone, Default)]
pub struct LoadedObjects {
    /// The objects (of every cluster, when there are several).
    pub objects: FluxObjects,
    /// Where they came from.
    pub read: ObjectsRead,
    /// The clusters, when the tree holds more than one (each root Flux Kustomization and
    /// what it applies); empty for one cluster or none.
    pub clusters: Vec<Cluster>,
}

/// Whether a file may hold objects worth parsing: Flux kinds, or the plain kinds they refer
/// to (a screen before YAML parsing, which dominates on large trees).
fn worth_parsing(bytes: &[u8]) -> bool {
    use memchr::memmem::find;
    find(bytes, b"toolkit.fluxcd.io").is_some()
        || find(bytes, b"Namespace").is_some()
        || find(bytes, b"ConfigMap").is_some()
        || find(bytes, b"Secret").is_some()
}

/// One file's text and, parsed alone, its objects.
struct RawFile {
    text: String,
    objects: FluxObjects,
}

/// Parses the files that may hold objects, each alone.
fn parse_files(repo: &RepoFiles) -> BTreeMap<PathBuf, RawFile> {
    let mut files = BTreeMap::new();
    for (rel, bytes) in repo.iter() {
        if !worth_parsing(bytes) {
            continue;
        }
        let mut objects = FluxObjects::default();
        objects.add_bytes(rel, bytes);
        let text = String::from_utf8_lossy(bytes).into_owned();
        files.insert(rel.clone(), RawFile { text, objects });
    }
    files
}

fn object_count(objects: &FluxObjects) -> usize {
    objects.repositories.len()
        + objects.policies.len()
        + objects.automations.len()
        + objects.git_repositories.len()
        + objects.kustomizations.len()
        + objects.plain.len()
}

fn has_objects(objects: &FluxObjects) -> bool {
    object_count(objects) + objects.failures.len() > 0
}

/// Reads the Flux objects of `root` as the clusters that sync it would have them: when
/// Flux Kustomizations are present, what each cluster's Kustomizations apply (with their
/// substitutions and namespaces); otherwise every YAML file, and the report says so.
pub fn load_tree(root: &Path) -> LoadedObjects {
    load_repo(&RepoFiles::read(root))
}

/// [`load_tree`] over files already read.
pub fn load_repo(repo: &RepoFiles) -> LoadedObjects {
    let files = parse_files(repo);
    let mut loaded = if files.values().any(|f| !f.objects.kustomizations.is_empty()) {
        load_clusters(repo, &files)
    } else {
        every_file(&files)
    };
    loaded
        .objects
        .warnings
        .extend(repo.warnings.iter().cloned());
    loaded
}

/// Every YAML file under the root.
fn every_file(files: &BTreeMap<PathBuf, RawFile>) -> LoadedObjects {
    let mut loaded = LoadedObjects::default();
    loaded.read.mode =
        "every YAML file under the root (no Flux Kustomization decides what a cluster applies)"
            .into();
    for (rel, file) in files {
        if has_objects(&file.objects) {
            loaded.read.files.push(ObjectFile {
                path: rel.display().to_string(),
                reason: "a YAML file under the root".into(),
            });
        }
        merge(&mut loaded.objects, file.objects.clone());
    }
    resolve_duplicates(&mut loaded.objects);
    loaded
}

fn merge(into: &mut FluxObjects, from: FluxObjects) {
    into.repositories.extend(from.repositories);
    into.policies.extend(from.policies);
    into.automations.extend(from.automations);
    into.git_repositories.extend(from.git_repositories);
    into.kustomizations.extend(from.kustomizations);
    into.plain.extend(from.plain);
    into.failures.extend(from.failures);
    into.warnings.extend(from.warnings);
}

/// The variables of a Kustomization's `postBuild`: `substituteFrom` entries in order (a
/// later one overrides an earlier key), then `substitute` over them all; `None` without
/// `postBuild` (no substitution at all, as in Flux).
fn variables(
    k: &KustomizationObject,
    cluster_plain: &[crate::crd::PlainObject],
    tree_plain: &[crate::crd::PlainObject],
    notes: &mut Vec<String>,
) -> Option<BTreeMap<String, String>> {
    if k.substitute.is_empty() && k.substitute_from.is_empty() {
        return None;
    }
    let mut vars = BTreeMap::new();
    for (kind, key, optional) in &k.substitute_from {
        let named = |o: &&crate::crd::PlainObject| {
            &o.kind == kind && o.namespace == key.namespace() && o.name == key.name()
        };
        // The cluster's own (applied so far) first: every cluster of a fleet has its
        // `cluster-vars`; then any of the tree.
        match cluster_plain
            .iter()
            .find(named)
            .or_else(|| tree_plain.iter().find(named))
        {
            Some(object) => vars.extend(object.data.clone()),
            None if *optional => {}
            None => notes.push(format!(
                "Kustomization {}: {kind} {key} of spec.postBuild.substituteFrom is not in the repository (it may exist only in the cluster); its variables stay unresolved",
                k.origin.key
            )),
        }
    }
    vars.extend(k.substitute.clone());
    Some(vars)
}

/// The parsed documents of a file as a Kustomization applies them: variables substituted
/// (but not in documents that opt out with `kustomize.toolkit.fluxcd.io/substitute:
/// disabled`) and the kustomization's namespace set.
fn applied_documents(
    raw: &RawFile,
    vars: Option<&BTreeMap<String, String>>,
    namespace: Option<&str>,
) -> Vec<Node> {
    let Ok(raw_docs) = parse_documents(&raw.text) else {
        return Vec::new();
    };
    let mut docs = match vars {
        Some(vars) => {
            let (text, _) = crate::kustomize::substitute(&raw.text, vars);
            match parse_documents(&text) {
                Ok(docs) if docs.len() == raw_docs.len() => docs
                    .into_iter()
                    .zip(&raw_docs)
                    .map(|(doc, raw)| {
                        let disabled =
                            ["metadata.annotations", "metadata.labels"].iter().any(|m| {
                                raw.at(m)
                                    .and_then(|n| n.get("kustomize.toolkit.fluxcd.io/substitute"))
                                    .and_then(Node::as_str)
                                    == Some("disabled")
                            });
                        if disabled {
                            raw.clone()
                        } else {
                            doc
                        }
                    })
                    .collect(),
                _ => raw_docs,
            }
        }
        None => raw_docs,
    };
    if let Some(ns) = namespace {
        for doc in &mut docs {
            let cluster_scoped = doc.get("kind").and_then(Node::as_str) == Some("Namespace");
            if !cluster_scoped {
                doc.set_namespace(ns);
            }
        }
    }
    docs
}

/// Reads the clusters: each root Kustomization (one that no other applies) and everything
/// it applies, transitively.
fn load_clusters(repo: &RepoFiles, files: &BTreeMap<PathBuf, RawFile>) -> LoadedObjects {
    let mut loaded = LoadedObjects::default();
    loaded.read.mode =
        "what the Flux Kustomizations apply (kustomize-controller's rules, postBuild substitution)"
            .into();
    let all: Vec<&KustomizationObject> = files
        .values()
        .flat_map(|f| f.objects.kustomizations.iter())
        .collect();
    let plain: Vec<crate::crd::PlainObject> = files
        .values()
        .flat_map(|f| f.objects.plain.iter().cloned())
        .collect();
    // Kustomizations that apply this repository: those whose GitRepository is one the
    // automations push through (or any GitRepository of the tree when none names one).
    let automation_sources: BTreeSet<String> = files
        .values()
        .flat_map(|f| f.objects.automations.iter())
        .filter_map(|a| a.source.as_ref().map(ToString::to_string))
        .collect();
    let ours = |k: &KustomizationObject| match &k.source {
        Some((kind, key)) => {
            kind == "GitRepository"
                && (automation_sources.is_empty() || automation_sources.contains(&key.to_string()))
        }
        None => false,
    };
    let applied_by = |k: &KustomizationObject| crate::kustomize::applied_files(repo, &k.path);
    let roots: Vec<&KustomizationObject> = all
        .iter()
        .copied()
        .filter(|k| ours(k))
        .filter(|k| {
            !all.iter().any(|other| {
                other.origin.key != k.origin.key
                    && ours(other)
                    && applied_by(other)
                        .files
                        .iter()
                        .any(|f| f.path == k.origin.file)
            })
        })
        .collect();
    let mut read_files: BTreeSet<PathBuf> = BTreeSet::new();
    for root_k in roots {
        // A cluster is named by the path its root Kustomization syncs (`clusters/prod`).
        let label = root_k
            .path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let label = if label.is_empty() {
            ".".to_string()
        } else {
            label
        };
        let mut cluster = Cluster {
            name: label.clone(),
            objects: FluxObjects::default(),
        };
        let mut queue = vec![root_k.clone()];
        let mut seen: BTreeSet<String> = BTreeSet::new();
        while let Some(k) = queue.pop() {
            if !seen.insert(k.origin.key()) {
                continue;
            }
            let mut notes = Vec::new();
            // substituteFrom reads the ConfigMaps and Secrets this cluster has: those
            // applied so far (a cluster's variables live in its own folder), else any of
            // the tree.
            let vars = variables(&k, &cluster.objects.plain, &plain, &mut notes);
            let applied = applied_by(&k);
            notes.extend(
                applied
                    .notes
                    .iter()
                    .map(|n| format!("Kustomization {}: {n}", k.origin.key)),
            );
            cluster.objects.warnings.extend(notes);
            for file in &applied.files {
                let Some(raw) = files.get(&file.path) else {
                    continue;
                };
                let mut objects = FluxObjects::default();
                if raw.objects.failures.iter().any(|f| f.kind == "file") {
                    objects.failures.extend(raw.objects.failures.clone());
                } else {
                    for doc in applied_documents(raw, vars.as_ref(), file.namespace.as_deref()) {
                        objects.add_node(&file.path, &doc);
                    }
                }
                if has_objects(&objects) {
                    read_files.insert(file.path.clone());
                    if !loaded
                        .read
                        .files
                        .iter()
                        .any(|f| f.path == file.path.display().to_string())
                    {
                        loaded.read.files.push(ObjectFile {
                            path: file.path.display().to_string(),
                            reason: format!(
                                "applied by Kustomization {} ({}) of cluster {label}",
                                k.origin.key,
                                k.origin.location()
                            ),
                        });
                    }
                }
                queue.extend(objects.kustomizations.iter().filter(|c| ours(c)).cloned());
                merge(&mut cluster.objects, objects);
            }
        }
        resolve_duplicates(&mut cluster.objects);
        loaded.clusters.push(cluster);
    }
    // Flux image objects that no Kustomization applies are never in a cluster: say so.
    for (rel, raw) in files {
        let image_objects = raw.objects.repositories.len()
            + raw.objects.policies.len()
            + raw.objects.automations.len();
        if image_objects > 0 && !read_files.contains(rel) {
            loaded.read.warnings_unapplied.push(format!(
                "{} holds Flux image objects but no Kustomization applies it: not read (Flux would never see them)",
                rel.display()
            ));
        }
    }
    let mut union = FluxObjects::default();
    for cluster in &loaded.clusters {
        merge(&mut union, cluster.objects.clone());
    }
    union
        .warnings
        .extend(loaded.read.warnings_unapplied.iter().cloned());
    // The union serves what spans clusters (the --url checkout, `check`); duplicates
    // across clusters are expected there.
    dedupe_identical(&mut union);
    let mut seen = BTreeSet::new();
    union
        .failures
        .retain(|f| seen.insert((f.kind.clone(), f.error.message.clone())));
    let mut seen = BTreeSet::new();
    union.warnings.retain(|w| seen.insert(w.clone()));
    loaded.objects = union;
    if loaded.clusters.len() == 1 {
        loaded.clusters.clear();
    }
    loaded
}

/// One cluster's objects.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The path its root Kustomization syncs (`clusters/prod`).
    pub name: String,
    /// What its Kustomizations apply.
    pub objects: FluxObjects,
}

/// An object's identity and where it was defined, for duplicate detection.
trait Defined: serde::Serialize {
    fn origin(&self) -> &crate::crd::Origin;
}

macro_rules! defined {
    ($($t:ty),*) => { $(impl Defined for $t { fn origin(&self) -> &crate::crd::Origin { &self.origin } })* };
}
defined!(
    crate::crd::ImageRepository,
    crate::crd::ImagePolicyObject,
    crate::crd::Automation,
    crate::crd::GitRepositoryObject,
    KustomizationObject
);

/// The object without where it was read, to compare definitions.
fn definition<T: Defined>(object: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("origin");
    }
    value
}

/// Keeps one of identical definitions. With `strict` (one cluster), two different
/// definitions of one kind/namespace/name are both dropped and reported naming both files
/// (never one picked silently); without (the union of clusters), both are kept.
fn dedupe<T: Defined + Clone>(
    kind: &str,
    objects: &mut Vec<T>,
    failures: &mut Vec<crate::crd::ObjectFailure>,
    strict: bool,
) {
    let mut kept: Vec<T> = Vec::new();
    let mut conflicting: BTreeSet<String> = BTreeSet::new();
    for object in objects.drain(..) {
        let key = object.origin().key();
        match kept.iter().find(|k| k.origin().key() == key) {
            None => kept.push(object),
            Some(first) if definition(first) == definition(&object) => {}
            // Across clusters, different definitions are different objects: keep both.
            Some(_) if !strict => kept.push(object),
            Some(first) => {
                let message = format!(
                    "{kind} {key} is defined twice, differently: {} and {}; neither is used",
                    first.origin().location(),
                    object.origin().location()
                );
                failures.push(crate::crd::ObjectFailure {
                    kind: kind.into(),
                    object: Some(key.clone()),
                    error: ObjectError::new(ObjectCode::DuplicateObject.as_str(), message),
                });
                conflicting.insert(key);
            }
        }
    }
    kept.retain(|o| !conflicting.contains(&o.origin().key()));
    *objects = kept;
}

fn resolve_duplicates(objects: &mut FluxObjects) {
    let failures = &mut objects.failures;
    dedupe("ImageRepository", &mut objects.repositories, failures, true);
    dedupe("ImagePolicy", &mut objects.policies, failures, true);
    dedupe(
        "ImageUpdateAutomation",
        &mut objects.automations,
        failures,
        true,
    );
    dedupe(
        "GitRepository",
        &mut objects.git_repositories,
        failures,
        true,
    );
    dedupe("Kustomization", &mut objects.kustomizations, failures, true);
}

fn dedupe_identical(objects: &mut FluxObjects) {
    let failures = &mut objects.failures;
    dedupe(
        "ImageRepository",
        &mut objects.repositories,
        failures,
        false,
    );
    dedupe("ImagePolicy", &mut objects.policies, failures, false);
    dedupe(
        "ImageUpdateAutomation",
        &mut objects.automations,
        failures,
        false,
    );
    dedupe(
        "GitRepository",
        &mut objects.git_repositories,
        failures,
        false,
    );
    dedupe(
        "Kustomization",
        &mut objects.kustomizations,
        failures,
        false,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fifos_symlinks_and_dangling_links_are_skipped_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("ok.yaml"), "a: 1\n").unwrap();
        std::fs::write(root.join("Kustomization"), "resources: []\n").unwrap();
        let fifo = root.join("fifo.yaml");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.yaml")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("dangling.yml")).unwrap();
        let repo = RepoFiles::read(root);
        let files: Vec<&PathBuf> = repo.iter().map(|(p, _)| p).collect();
        assert_eq!(files, [Path::new("Kustomization"), Path::new("ok.yaml")]);
        let warnings = repo.warnings.join("\n");
        for name in ["fifo.yaml", "zero.yaml", "dangling.yml"] {
            assert!(warnings.contains(name), "{name}: {warnings}");
        }
        assert!(warnings.contains("dangling"), "{warnings}");
    }
}
