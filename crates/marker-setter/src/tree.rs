//! Whole trees: walk, screen, rewrite in parallel, then write as one transaction.

use crate::reference::Policies;
use crate::rewrite::{rewrite_str, ObjectChanges};
use crate::safe_fs::{remove_stale_temps, replace_file};
use crate::walk::{Found, Walk};
use crate::{SetterError, Warning};
use memchr::memmem;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The default cap on the size of a file read (64 MiB): larger files are skipped with a
/// `file_too_large` warning.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 << 20;

/// Which files a tree run reads, and where it may read and write.
///
/// A file is read when its name ends with one of `extensions` or equals one of
/// `file_names`, its root-relative, `/`-separated path matches one of `include` (all paths
/// when empty) and none of `exclude`. Globs use `globset` syntax (`**/*.yaml`,
/// `apps/{a,b}/**`, `*` stays within one folder).
#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// File name suffixes to read (default `.yaml`, `.yml`, as Flux).
    pub extensions: Vec<String>,
    /// Exact file names to read besides `extensions` (default `Kustomization`, which
    /// Flux's reader accepts without an extension).
    pub file_names: Vec<String>,
    /// The folder nothing may be read or written outside of, typically the repository
    /// root (default `None`: the tree root itself). The tree root must lie inside it with
    /// no symlink leaving it on the way.
    pub confine_to: Option<PathBuf>,
    /// Files larger than this many bytes are skipped with a `file_too_large` warning
    /// (default [`DEFAULT_MAX_FILE_SIZE`]).
    pub max_file_size: u64,
    /// Globs a file's relative path must match (default: none, every path).
    pub include: Vec<String>,
    /// Globs of relative paths to skip (default: none).
    pub exclude: Vec<String>,
    /// Worker threads for the walk (0: one per core).
    pub threads: usize,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            extensions: vec![".yaml".into(), ".yml".into()],
            file_names: vec!["Kustomization".into()],
            confine_to: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            include: Vec::new(),
            exclude: Vec::new(),
            threads: 0,
        }
    }
}

/// The changes in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChanges {
    /// Path relative to the tree root given to [`plan_tree`] (as Flux's
    /// `Result.FileChanges` keys are relative to `update.path`), `/`-separated.
    pub path: String,
    /// Changes per object, in file order.
    pub objects: Vec<ObjectChanges>,
}

/// Everything a tree run changed or refused to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetterResult {
    /// Files with changes, sorted by path.
    pub files: Vec<FileChanges>,
    /// Problems that left a file or a marker unchanged, sorted by path and line.
    pub warnings: Vec<Warning>,
    /// How many files were read (matched the extensions).
    pub files_scanned: usize,
    /// How many of them held the marker key and were parsed.
    pub files_with_markers: usize,
}

impl SetterResult {
    /// All changes, in file order.
    pub fn changes(&self) -> impl Iterator<Item = (&FileChanges, &ObjectChanges, &crate::Change)> {
        self.files.iter().flat_map(|f| {
            f.objects
                .iter()
                .flat_map(move |o| o.changes.iter().map(move |c| (f, o, c)))
        })
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[derive(Debug, Clone)]
struct PlannedFile {
    relative: String,
    absolute: PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
}

/// What a tree run would change; nothing is written until [`TreePlan::write`].
#[derive(Debug, Clone)]
pub struct TreePlan {
    root: PathBuf,
    files: Vec<PlannedFile>,
    result: SetterResult,
}

impl TreePlan {
    /// The result model (what changed, warnings).
    pub fn result(&self) -> &SetterResult {
        &self.result
    }

    /// The root the plan was made under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Changed files, relative to the root.
    pub fn changed_paths(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .map(|f| PathBuf::from(&f.relative))
            .collect()
    }

    /// The new content of a changed file (relative path), for previews.
    pub fn new_content(&self, relative: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.relative == relative)
            .map(|f| f.new.as_slice())
    }

    /// A unified diff of every change (`a/PATH` / `b/PATH` headers, 3 lines of context).
    pub fn unified_diff(&self) -> String {
        let mut out = String::new();
        for f in &self.files {
            let old = String::from_utf8_lossy(&f.old);
            let new = String::from_utf8_lossy(&f.new);
            let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref());
            out.push_str(
                &diff
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", f.relative), &format!("b/{}", f.relative))
                    .to_string(),
            );
        }
        out
    }

    /// Writes every changed file, as one transaction.
    ///
    /// Each file is re-read first and left alone if it changed since planning (or is no
    /// longer a regular file): [`SetterError::Conflict`]. A file with one link is replaced
    /// by a temp file renamed over it, given the original's owner, group and mode; a file
    /// with several hard links (or whose owner the process may not give) is rewritten in
    /// place, so every link sees the new content. When any write fails, every file written
    /// before it is restored byte for byte and the error names the file that failed; when
    /// a restore fails too, [`SetterError::RollbackFailed`] lists what keeps the new
    /// content. Temp files a killed run left in the folders written to (regular files named
    /// `.tagsmith-` + 12 letters/digits + `.tmp`, nothing else) are removed first.
    pub fn write(&self) -> Result<Vec<PathBuf>, SetterError> {
        let mut folders: Vec<&Path> = self
            .files
            .iter()
            .filter_map(|f| f.absolute.parent())
            .collect();
        folders.sort();
        folders.dedup();
        for folder in folders {
            remove_stale_temps(folder);
        }
        let mut written: Vec<&PlannedFile> = Vec::with_capacity(self.files.len());
        for f in &self.files {
            if let Err(err) = replace_file(&f.absolute, &f.old, &f.new) {
                let unrestored: Vec<PathBuf> = written
                    .iter()
                    .rev()
                    .filter(|w| replace_file(&w.absolute, &w.new, &w.old).is_err())
                    .map(|w| w.absolute.clone())
                    .collect();
                if unrestored.is_empty() {
                    return Err(err);
                }
                return Err(SetterError::RollbackFailed {
                    path: f.absolute.clone(),
                    source: Box::new(err),
                    unrestored,
                });
            }
            written.push(f);
        }
        Ok(written.iter().map(|f| PathBuf::from(&f.relative)).collect())
    }
}

/// Reads every YAML file under `root` that holds the marker key and computes the rewrite.
///
/// The walk is [`crate::walk_yaml_files`]'s: every folder, hidden ones too (`.github/`),
/// except `.git`; `*.yaml`, `*.yml` and `Kustomization` as Flux; never a symlink followed
/// nor a special file opened; nothing read outside `opts.confine_to`. `root` must be a
/// folder, not a symlink ([`SetterError::SymlinkRoot`]), inside the confinement root
/// ([`SetterError::SymlinkOutsideRoot`], [`SetterError::PathEscapesRoot`]). A symlinked
/// YAML file is never written through: one pointing into the tree is skipped (the file
/// itself is planned), one pointing elsewhere inside the confinement root is read and, if
/// it would change, reported as `symlink_not_written`. Files without `$imagepolicy` are
/// never parsed. Paths in the result are relative to `root` as given.
pub fn plan_tree(
    root: &Path,
    policies: &Policies,
    opts: &TreeOptions,
) -> Result<TreePlan, SetterError> {
    let walk = Walk::new(root, opts)?;
    let finder = memmem::Finder::new(crate::MARKER_KEY.as_bytes());
    let state = Mutex::new((Vec::<PlannedFile>::new(), SetterResult::default()));
    walk.run(&|found| {
        let file = match found {
            Found::File(file) => file,
            Found::Warning(w) => {
                lock(&state).1.warnings.push(w);
                return true;
            }
        };
        let has_marker = finder.find(&file.content).is_some();
        let outcome =
            has_marker.then(|| rewrite_str(&file.content, Path::new(&file.relative_path), policies));
        let mut guard = lock(&state);
        guard.1.files_scanned += 1;
        let Some(outcome) = outcome else {
            return true;
        };
        guard.1.files_with_markers += 1;
        if let Some(target) = &file.link_target {
            if outcome.new_content.is_some() {
                let count: usize = outcome.objects.iter().map(|o| o.changes.len()).sum();
                guard.1.warnings.push(Warning {
                    path: file.relative_path,
                    line: 0,
                    code: "symlink_not_written".into(),
                    message: format!(
                        "a symlink to {}: {count} marked value(s) would change, but links are not written through; update the file it points to",
                        crate::text::clip(&target.to_string_lossy())
                    ),
                });
            }
            return true;
        }
        guard.1.warnings.extend(outcome.warnings);
        if let Some(new) = outcome.new_content {
            guard.1.files.push(FileChanges {
                path: file.relative_path.clone(),
                objects: outcome.objects,
            });
            guard.0.push(PlannedFile {
                relative: file.relative_path,
                absolute: file.path,
                old: file.content,
                new,
            });
        }
        true
    });
    let (mut files, mut result) = state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    result.files.sort_by(|a, b| a.path.cmp(&b.path));
    result
        .warnings
        .sort_by(|a, b| (&a.path, a.line, &a.code).cmp(&(&b.path, b.line, &b.code)));
    Ok(TreePlan {
        root: root.to_path_buf(),
        files,
        result,
    })
}

/// Plans and writes: the one-call form of [`plan_tree`] + [`TreePlan::write`].
pub fn apply_tree(
    root: &Path,
    policies: &Policies,
    opts: &TreeOptions,
) -> Result<SetterResult, SetterError> {
    let plan = plan_tree(root, policies, opts)?;
    plan.write()?;
    Ok(plan.result)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
