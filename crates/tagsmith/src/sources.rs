//! Which files the Flux objects are read from, and why.
//!
//! Files are walked safely: regular files only (a FIFO named `x.yaml` would block a read
//! forever, `/dev/zero` behind a symlink would never end), no symlink followed, sizes
//! capped, `.git` skipped.

use crate::crd::FluxObjects;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The largest file read for objects (a `gotk-components.yaml` is about 1 MB).
pub const MAX_OBJECT_FILE_BYTES: u64 = 32 * 1024 * 1024;

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
}

/// The objects of a tree, with the files they came from.
#[derive(Debug, Clone, Default)]
pub struct LoadedObjects {
    /// The objects.
    pub objects: FluxObjects,
    /// Where they came from.
    pub read: ObjectsRead,
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

/// The YAML files of `root`, relative, sorted: regular files named `*.yaml`, `*.yml` or
/// `Kustomization`, never through a symlink, `.git` skipped. Anything skipped that looks
/// like YAML is reported in `skipped`.
pub fn yaml_files(root: &Path, skipped: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build()
    {
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        let name = entry.file_name().to_string_lossy();
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization";
        if !yaml || path == root {
            continue;
        }
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
        if kind.is_symlink() {
            let what = match std::fs::metadata(path) {
                Err(_) => "a dangling symlink",
                Ok(_) => "a symlink",
            };
            skipped.push(format!("{}: {what}; not followed", rel.display()));
        } else if kind.is_file() {
            files.push(rel);
        } else if !kind.is_dir() {
            skipped.push(format!(
                "{}: not a regular file (a FIFO, socket or device); not read",
                rel.display()
            ));
        }
    }
    files.sort();
    files
}

/// Reads one file of the tree: regular, within the size cap, opened without following a
/// symlink and without blocking.
pub fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_OBJECT_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_OBJECT_FILE_BYTES} bytes"
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_OBJECT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads every YAML file of `root` (the mode without Flux Kustomizations).
pub fn load_tree(root: &Path) -> LoadedObjects {
    let mut skipped = Vec::new();
    let mut loaded = LoadedObjects::default();
    loaded.read.mode =
        "every YAML file under the root (no Flux Kustomization decides what a cluster applies)"
            .into();
    for rel in yaml_files(root, &mut skipped) {
        let bytes = match read_regular(&root.join(&rel)) {
            Ok(bytes) => bytes,
            Err(e) => {
                skipped.push(format!("{}: {e}; not read", rel.display()));
                continue;
            }
        };
        if !worth_parsing(&bytes) {
            continue;
        }
        let before = loaded.objects.failures.len() + object_count(&loaded.objects);
        loaded.objects.add_bytes(&rel, &bytes);
        if loaded.objects.failures.len() + object_count(&loaded.objects) > before {
            loaded.read.files.push(ObjectFile {
                path: rel.display().to_string(),
                reason: "a YAML file under the root".into(),
            });
        }
    }
    loaded.objects.warnings.extend(skipped);
    loaded
}

fn object_count(objects: &FluxObjects) -> usize {
    objects.repositories.len()
        + objects.policies.len()
        + objects.automations.len()
        + objects.git_repositories.len()
        + objects.kustomizations.len()
        + objects.plain.len()
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
        let mut skipped = Vec::new();
        let files = yaml_files(root, &mut skipped);
        assert_eq!(
            files,
            [PathBuf::from("Kustomization"), PathBuf::from("ok.yaml")]
        );
        skipped.sort();
        assert!(
            skipped[0].starts_with("dangling.yml: a dangling symlink"),
            "{skipped:?}"
        );
        assert!(
            skipped[1].starts_with("fifo.yaml: not a regular file"),
            "{skipped:?}"
        );
        assert!(
            skipped[2].starts_with("zero.yaml: a symlink"),
            "{skipped:?}"
        );
        // Even asked directly, a FIFO is not opened for reading (which would block).
        assert!(read_regular(&fifo).is_err());
        assert!(read_regular(&root.join("zero.yaml")).is_err());
    }
}
