//! Whole trees: walk, screen, rewrite in parallel, then write atomically.

use crate::reference::Policies;
use crate::rewrite::{rewrite_str, ObjectChanges};
use crate::{SetterError, Warning};
use ignore::{WalkBuilder, WalkState};
use memchr::memmem;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Which files a tree run reads.
///
/// A file is read when its name ends with one of `extensions`, its root-relative,
/// `/`-separated path matches one of `include` (all paths when empty) and none of `exclude`.
/// Globs use `globset` syntax (`**/*.yaml`, `apps/{a,b}/**`, `*` stays within one folder).
#[derive(Debug, Clone)]
pub struct TreeOptions {
    /// File name suffixes to read (default `.yaml`, `.yml`, as Flux).
    pub extensions: Vec<String>,
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
            include: Vec::new(),
            exclude: Vec::new(),
            threads: 0,
        }
    }
}

fn glob_set(patterns: &[String]) -> Result<Option<globset::GlobSet>, SetterError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| SetterError::InvalidGlob {
                pattern: pattern.clone(),
                reason: e.kind().to_string(),
            })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| SetterError::InvalidGlob {
            pattern: patterns.join(", "),
            reason: e.to_string(),
        })
}

/// The changes in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChanges {
    /// Path relative to the root, `/`-separated.
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

    /// Writes every changed file atomically (temp file in the same folder, then rename),
    /// keeping its permissions. A file that changed on disk since it was read is not
    /// overwritten: the error names it, and files written before it stay written.
    pub fn write(&self) -> Result<Vec<PathBuf>, SetterError> {
        let mut written = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let io = |source| SetterError::Io {
                path: f.absolute.clone(),
                source,
            };
            let current = std::fs::read(&f.absolute).map_err(io)?;
            if current != f.old {
                return Err(SetterError::Conflict {
                    path: f.absolute.clone(),
                });
            }
            let permissions = std::fs::metadata(&f.absolute).map_err(io)?.permissions();
            let dir = f.absolute.parent().unwrap_or(Path::new("."));
            let mut tmp = tempfile::Builder::new()
                .prefix(".tagsmith-")
                .tempfile_in(dir)
                .map_err(io)?;
            tmp.write_all(&f.new).map_err(io)?;
            tmp.as_file().sync_all().map_err(io)?;
            std::fs::set_permissions(tmp.path(), permissions).map_err(io)?;
            tmp.persist(&f.absolute).map_err(|e| io(e.error))?;
            written.push(PathBuf::from(&f.relative));
        }
        Ok(written)
    }
}

/// Reads every YAML file under `root` that holds the marker key and computes the rewrite.
///
/// Like Flux it walks every folder, hidden ones too (`.github/`), except `.git`; it never
/// follows a symlink (a symlinked file inside the root is reached through its real path, one
/// pointing outside is reported). Files without `$imagepolicy` are never parsed.
pub fn plan_tree(
    root: &Path,
    policies: &Policies,
    opts: &TreeOptions,
) -> Result<TreePlan, SetterError> {
    let meta = std::fs::metadata(root).map_err(|e| SetterError::InvalidRoot {
        path: root.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(SetterError::InvalidRoot {
            path: root.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let canonical_root = std::fs::canonicalize(root).map_err(|e| SetterError::InvalidRoot {
        path: root.to_path_buf(),
        reason: e.to_string(),
    })?;
    let include = glob_set(&opts.include)?;
    let exclude = glob_set(&opts.exclude)?;
    let finder = memmem::Finder::new(crate::MARKER_KEY.as_bytes());
    let state = Mutex::new((Vec::<PlannedFile>::new(), SetterResult::default()));
    let walker = WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .threads(opts.threads)
        .filter_entry(|e| e.file_name() != ".git")
        .build_parallel();
    walker.run(|| {
        let finder = &finder;
        let state = &state;
        let canonical_root = &canonical_root;
        let (include, exclude) = (&include, &exclude);
        Box::new(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => {
                    lock(state).1.warnings.push(Warning {
                        path: walk_error_path(root, &err),
                        line: 0,
                        code: "unreadable".into(),
                        message: format!("cannot walk: {err}"),
                    });
                    return WalkState::Continue;
                }
            };
            let name = entry.file_name().to_string_lossy();
            if !opts
                .extensions
                .iter()
                .any(|ext| name.ends_with(ext.as_str()))
            {
                return WalkState::Continue;
            }
            let relative = relative_path(root, entry.path());
            if include.as_ref().is_some_and(|g| !g.is_match(&relative))
                || exclude.as_ref().is_some_and(|g| g.is_match(&relative))
            {
                return WalkState::Continue;
            }
            let Some(file_type) = entry.file_type() else {
                return WalkState::Continue;
            };
            if file_type.is_symlink() {
                let inside = std::fs::canonicalize(entry.path())
                    .map(|target| target.starts_with(canonical_root))
                    .unwrap_or(false);
                if !inside {
                    lock(state).1.warnings.push(Warning {
                        path: relative,
                        line: 0,
                        code: "symlink_outside_root".into(),
                        message: "symlink points outside the root; not followed".into(),
                    });
                }
                return WalkState::Continue;
            }
            if !file_type.is_file() {
                return WalkState::Continue;
            }
            let content = match std::fs::read(entry.path()) {
                Ok(c) => c,
                Err(e) => {
                    lock(state).1.warnings.push(Warning {
                        path: relative,
                        line: 0,
                        code: "unreadable".into(),
                        message: format!("cannot read: {e}"),
                    });
                    return WalkState::Continue;
                }
            };
            let has_marker = finder.find(&content).is_some();
            let outcome = has_marker.then(|| rewrite_str(&content, Path::new(&relative), policies));
            let mut guard = lock(state);
            guard.1.files_scanned += 1;
            if let Some(outcome) = outcome {
                guard.1.files_with_markers += 1;
                guard.1.warnings.extend(outcome.warnings);
                if let Some(new) = outcome.new_content {
                    guard.1.files.push(FileChanges {
                        path: relative.clone(),
                        objects: outcome.objects,
                    });
                    guard.0.push(PlannedFile {
                        relative,
                        absolute: entry.path().to_path_buf(),
                        old: content,
                        new,
                    });
                }
            }
            WalkState::Continue
        })
    });
    let (mut files, mut result) = state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    result.files.sort_by(|a, b| a.path.cmp(&b.path));
    result
        .warnings
        .sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn walk_error_path(root: &Path, err: &ignore::Error) -> String {
    fn find(err: &ignore::Error) -> Option<&Path> {
        match err {
            ignore::Error::WithPath { path, .. } => Some(path),
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                find(err)
            }
            _ => None,
        }
    }
    find(err).map_or_else(String::new, |p| relative_path(root, p))
}

fn relative_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
