//! The YAML file walk shared by the setter and other readers of a repository: which files
//! are read, how symlinks and special files are treated, and the parallel walk itself.

use crate::safe_fs::{read_regular, resolve_tree_root, type_name, ReadError};
use crate::text::clip;
use crate::tree::TreeOptions;
use crate::{SetterError, Warning};
use ignore::{WalkBuilder, WalkState};
use std::path::{Path, PathBuf};

/// A YAML file found by [`walk_yaml_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlFile {
    /// Path relative to the walk root, `/`-separated (for a symlinked file: the link's).
    pub relative_path: String,
    /// The real path it was read from.
    pub path: PathBuf,
    /// Its bytes as read (BOM and line ends untouched).
    pub content: Vec<u8>,
    /// For a file reached through a symlink: the link's target as written in it. Only links
    /// to files inside the confinement root but outside the walk root are read this way
    /// (a link to a file inside the walk root is skipped: the walk reads the file itself).
    /// The setter never writes through a link.
    pub link_target: Option<PathBuf>,
}

impl YamlFile {
    /// The content as UTF-8 without a leading BOM, or `None` when it is not UTF-8.
    pub fn text(&self) -> Option<&str> {
        let bytes = self.content.as_slice();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        std::str::from_utf8(bytes).ok()
    }
}

/// What the walk yields for one entry.
pub(crate) enum Found {
    File(YamlFile),
    Warning(Warning),
}

/// The resolved walk: real roots and compiled filters.
pub(crate) struct Walk<'o> {
    /// The real path of the tree root.
    pub(crate) root: PathBuf,
    confine: PathBuf,
    opts: &'o TreeOptions,
    include: Option<globset::GlobSet>,
    exclude: Option<globset::GlobSet>,
}

impl<'o> Walk<'o> {
    pub(crate) fn new(root: &Path, opts: &'o TreeOptions) -> Result<Self, SetterError> {
        let include = glob_set(&opts.include)?;
        let exclude = glob_set(&opts.exclude)?;
        let real = resolve_tree_root(root, opts.confine_to.as_deref())?;
        let confine = match &opts.confine_to {
            Some(c) => std::fs::canonicalize(c).map_err(|e| SetterError::InvalidRoot {
                path: c.clone(),
                reason: e.to_string(),
            })?,
            None => real.clone(),
        };
        Ok(Walk {
            root: real,
            confine,
            opts,
            include,
            exclude,
        })
    }

    /// Runs the parallel walk; `sink` gets every file read and every warning, from the
    /// worker threads. It returns `false` to stop the walk.
    pub(crate) fn run(&self, sink: &(dyn Fn(Found) -> bool + Sync)) {
        let walker = WalkBuilder::new(&self.root)
            .standard_filters(false)
            .hidden(false)
            .follow_links(false)
            .threads(self.opts.threads)
            .filter_entry(|e| e.file_name() != ".git")
            .build_parallel();
        walker.run(|| {
            Box::new(move |entry| {
                let found = match entry {
                    Ok(entry) => self.visit(&entry),
                    Err(err) => Some(Found::Warning(self.warning(
                        walk_error_path(&self.root, &err),
                        "unreadable",
                        format!("cannot walk: {}", clip(&err.to_string())),
                    ))),
                };
                match found.map(sink) {
                    Some(false) => WalkState::Quit,
                    _ => WalkState::Continue,
                }
            })
        });
    }

    fn warning(&self, path: String, code: &str, message: String) -> Warning {
        Warning {
            path,
            line: 0,
            code: code.into(),
            message,
        }
    }

    fn name_matches(&self, name: &str) -> bool {
        self.opts.file_names.iter().any(|n| n == name)
            || self
                .opts
                .extensions
                .iter()
                .any(|ext| name.ends_with(ext.as_str()))
    }

    fn selected(&self, relative: &str) -> bool {
        !(self.include.as_ref().is_some_and(|g| !g.is_match(relative))
            || self.exclude.as_ref().is_some_and(|g| g.is_match(relative)))
    }

    fn visit(&self, entry: &ignore::DirEntry) -> Option<Found> {
        // The entry's type is the directory entry's (lstat's): a symlink is a symlink.
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            return None;
        }
        let name = entry.file_name().to_string_lossy();
        let path = entry.path();
        if file_type.is_symlink() {
            return self.visit_symlink(path, self.name_matches(&name));
        }
        if !self.name_matches(&name) {
            return None;
        }
        let relative = relative_path(&self.root, path);
        if !self.selected(&relative) {
            return None;
        }
        if !file_type.is_file() {
            return Some(Found::Warning(self.warning(
                relative,
                "special_file",
                format!("{} is not a regular file; not read", type_name(file_type)),
            )));
        }
        Some(self.read(relative, path, None))
    }

    fn read(&self, relative: String, path: &Path, link_target: Option<PathBuf>) -> Found {
        match read_regular(path, self.opts.max_file_size) {
            Ok(content) => Found::File(YamlFile {
                relative_path: relative,
                path: path.to_path_buf(),
                content,
                link_target,
            }),
            Err(ReadError::NotRegular(kind)) => Found::Warning(self.warning(
                relative,
                "special_file",
                format!("{kind} is not a regular file; not read"),
            )),
            Err(ReadError::TooLarge(size)) => Found::Warning(self.warning(
                relative,
                "file_too_large",
                format!(
                    "{size} bytes, over the {} byte limit; not read",
                    self.opts.max_file_size
                ),
            )),
            Err(ReadError::Io(e)) => Found::Warning(self.warning(
                relative,
                "unreadable",
                format!("cannot read: {}", clip(&e.to_string())),
            )),
        }
    }

    /// Symlinks are never followed by the walk. A link named like a YAML file is resolved
    /// to say what it is: dangling, outside the confinement root, a folder, or a file; a
    /// file inside the confinement root but outside the walk root is read (the walk does
    /// not reach it otherwise) and marked with its link target.
    fn visit_symlink(&self, path: &Path, name_matches: bool) -> Option<Found> {
        let relative = relative_path(&self.root, path);
        if !self.selected(&relative) {
            return None;
        }
        let target = std::fs::read_link(path).unwrap_or_default();
        let shown = clip(&target.to_string_lossy()).into_owned();
        let warn = |code: &str, message: String| {
            Some(Found::Warning(self.warning(
                relative.clone(),
                code,
                message,
            )))
        };
        let real = match std::fs::canonicalize(path) {
            Ok(real) => real,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return if name_matches {
                    warn(
                        "symlink_dangling",
                        format!("a dangling symlink to {shown}; skipped"),
                    )
                } else {
                    None
                };
            }
            Err(e) => {
                return if name_matches {
                    warn(
                        "unreadable",
                        format!(
                            "a symlink to {shown} that cannot be resolved: {}",
                            clip(&e.to_string())
                        ),
                    )
                } else {
                    None
                };
            }
        };
        if !real.starts_with(&self.confine) {
            let is_dir = real.is_dir();
            return if name_matches || is_dir {
                warn(
                    "symlink_outside_root",
                    format!("a symlink to {shown}, outside the repository root; not followed"),
                )
            } else {
                None
            };
        }
        let meta = std::fs::symlink_metadata(&real).ok()?;
        if meta.is_dir() {
            return warn(
                "symlink_dir_skipped",
                format!("a symlink to the folder {shown}; symlinked folders are not followed"),
            );
        }
        if !name_matches || real.starts_with(&self.root) {
            return None;
        }
        if !meta.file_type().is_file() {
            return warn(
                "special_file",
                format!(
                    "a symlink to {}, not a regular file; not read",
                    type_name(meta.file_type())
                ),
            );
        }
        Some(self.read(relative, &real, Some(target)))
    }
}

/// Every YAML file under `root`, read with the setter's rules, in no particular order (the
/// walk is parallel; sort by `relative_path` when order matters).
///
/// The rules: names ending with one of `opts.extensions` or equal to one of
/// `opts.file_names` (by default `*.yaml`, `*.yml` and `Kustomization`, as Flux), matching
/// `include`/`exclude`; hidden folders walked, `.git` skipped, `.gitignore` not honoured.
/// `root` must be a real folder (not a symlink) inside `opts.confine_to`. Symlinks are
/// never followed: a link to a file inside the walk root is skipped (the file itself is
/// read), a link to a file elsewhere inside the confinement root is read with
/// [`YamlFile::link_target`] set, and links that dangle, leave the confinement root or
/// name a folder come back as warnings. FIFOs, sockets and devices are never opened;
/// regular files are opened with `O_NOFOLLOW | O_NONBLOCK`, checked on the handle, and
/// skipped with a warning above `opts.max_file_size`. Warnings have `line` 0 and codes
/// `special_file`, `file_too_large`, `unreadable`, `symlink_dangling`,
/// `symlink_outside_root`, `symlink_dir_skipped`.
///
/// ```
/// use tagsmith_marker_setter::{walk_yaml_files, TreeOptions};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("a.yaml"), "a: 1\n")?;
/// std::fs::write(dir.path().join("Kustomization"), "resources: []\n")?;
/// std::fs::write(dir.path().join("notes.txt"), "no\n")?;
/// let mut names: Vec<String> = walk_yaml_files(dir.path(), &TreeOptions::default())?
///     .filter_map(Result::ok)
///     .map(|f| f.relative_path)
///     .collect();
/// names.sort();
/// assert_eq!(names, ["Kustomization", "a.yaml"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn walk_yaml_files(root: &Path, opts: &TreeOptions) -> Result<YamlFiles, SetterError> {
    // Resolve and compile here, so that errors come back before any thread starts.
    Walk::new(root, opts)?;
    let (root, opts) = (root.to_path_buf(), opts.clone());
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    let thread = std::thread::spawn(move || {
        let Ok(walk) = Walk::new(&root, &opts) else {
            return;
        };
        let tx = std::sync::Mutex::new(tx);
        walk.run(&|found| {
            let item = match found {
                Found::File(f) => Ok(f),
                Found::Warning(w) => Err(w),
            };
            // A send fails once the iterator is dropped: stop walking.
            crate::tree::lock(&tx).send(item).is_ok()
        });
    });
    Ok(YamlFiles {
        rx,
        thread: Some(thread),
    })
}

/// The files of [`walk_yaml_files`], as the parallel walk finds them: each a file read or
/// a warning about one left unread. Dropping it stops the walk.
pub struct YamlFiles {
    rx: std::sync::mpsc::Receiver<Result<YamlFile, Warning>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Iterator for YamlFiles {
    type Item = Result<YamlFile, Warning>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl Drop for YamlFiles {
    fn drop(&mut self) {
        // Closing the channel fails every send, which stops the walk (and unblocks a
        // sender waiting on a full channel); then the thread is joined.
        drop(std::mem::replace(
            &mut self.rx,
            std::sync::mpsc::sync_channel(0).1,
        ));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn glob_set(patterns: &[String]) -> Result<Option<globset::GlobSet>, SetterError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| SetterError::InvalidGlob {
                pattern: clip(pattern).into_owned(),
                reason: e.kind().to_string(),
            })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| SetterError::InvalidGlob {
            pattern: clip(&patterns.join(", ")).into_owned(),
            reason: e.to_string(),
        })
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

pub(crate) fn relative_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
