//! File access for trees written by strangers: paths resolved inside a root, regular files
//! only (never a FIFO, socket or device: opening a FIFO blocks forever, opening a device
//! can have side effects), bounded reads, and writes that keep owner, group, mode and hard
//! links.

use crate::text::{clip, clip_path};
use crate::SetterError;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Not a regular file (FIFO, socket, device, directory, or a symlink where none was
    /// expected); it was not opened, or opened without blocking and closed unread.
    NotRegular(&'static str),
    /// Larger than the cap: its size.
    TooLarge(u64),
    /// The I/O error.
    Io(std::io::Error),
}

/// A name for a file type, for messages.
pub(crate) fn type_name(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_socket() {
            return "a socket";
        }
        if ft.is_block_device() || ft.is_char_device() {
            return "a device";
        }
    }
    if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symlink"
    } else if ft.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

/// Opens `path` without following a final symlink and without blocking (a FIFO put in
/// place after the type check must not hang the walk), then checks on the open handle that
/// it is a regular file, so the check and the read concern the same file.
fn open_regular(path: &Path, write: bool) -> Result<(File, Metadata), ReadError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(write);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = opts.open(path).map_err(|e| {
        // O_NOFOLLOW on a symlink fails with ELOOP.
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return ReadError::NotRegular("a symlink");
        }
        ReadError::Io(e)
    })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(type_name(meta.file_type())));
    }
    Ok((file, meta))
}

/// Reads a regular file of at most `max` bytes; `path` must have been checked with
/// `symlink_metadata` (or a directory entry's type) to be a regular file before.
pub(crate) fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    let (file, meta) = open_regular(path, false)?;
    if meta.len() > max {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the fstat: never read past the cap.
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() as u64 > max {
        return Err(ReadError::TooLarge(buf.len() as u64));
    }
    Ok(buf)
}

/// Resolves `relative` (a `/`-separated path from a repository, such as Flux's
/// `spec.update.path`) inside `root` and returns the real path it names.
///
/// Refused, each with its own error: an absolute path ([`SetterError::AbsolutePath`]);
/// `..` that climbs above `root` ([`SetterError::PathEscapesRoot`]); a symlink, at any
/// component, whose target lies outside `root` ([`SetterError::SymlinkOutsideRoot`]); a
/// missing component or a dangling symlink ([`SetterError::PathNotFound`]). Symlinks whose
/// target stays inside `root` are followed, component by component, so `..` after one
/// means the parent of where it points (as the OS would read it). `""` and `"."` are
/// `root` itself. `root` is trusted: it is canonicalized as given.
///
/// ```
/// use tagsmith_marker_setter::resolve_inside;
/// let repo = tempfile::tempdir()?;
/// std::fs::create_dir_all(repo.path().join("clusters/prod"))?;
/// let path = resolve_inside(repo.path(), "./clusters/prod")?;
/// assert!(path.ends_with("clusters/prod"));
/// assert_eq!(resolve_inside(repo.path(), "/etc").unwrap_err().code(), "absolute_path");
/// assert_eq!(resolve_inside(repo.path(), "clusters/../..").unwrap_err().code(), "path_escapes_root");
/// assert_eq!(resolve_inside(repo.path(), "apps").unwrap_err().code(), "path_not_found");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve_inside(root: &Path, relative: &str) -> Result<PathBuf, SetterError> {
    let root = std::fs::canonicalize(root).map_err(|e| SetterError::InvalidRoot {
        path: root.to_path_buf(),
        reason: e.to_string(),
    })?;
    let given = Path::new(relative);
    if given.has_root() || given.is_absolute() || relative.starts_with(['/', '\\']) {
        return Err(SetterError::AbsolutePath {
            path: clip(relative).into_owned(),
        });
    }
    let mut current = root.clone();
    for component in given.components() {
        match component {
            Component::CurDir => continue,
            Component::ParentDir => {
                if current == root {
                    return Err(SetterError::PathEscapesRoot {
                        path: clip(relative).into_owned(),
                    });
                }
                current.pop();
            }
            Component::Normal(name) => {
                let next = current.join(name);
                let meta = match std::fs::symlink_metadata(&next) {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(SetterError::PathNotFound {
                            path: clip_path(&next),
                            reason: "does not exist".into(),
                        })
                    }
                    Err(e) => {
                        return Err(SetterError::Io {
                            path: next,
                            source: e,
                        })
                    }
                };
                if !meta.file_type().is_symlink() {
                    current = next;
                    continue;
                }
                let target = std::fs::read_link(&next).map_err(|e| SetterError::Io {
                    path: next.clone(),
                    source: e,
                })?;
                match std::fs::canonicalize(&next) {
                    Ok(real) if real.starts_with(&root) => {}
                    Ok(_) => {
                        return Err(SetterError::SymlinkOutsideRoot {
                            path: clip_path(&next),
                            target: clip_path(&target),
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(SetterError::PathNotFound {
                            path: clip_path(&next),
                            reason: format!(
                                "a dangling symlink to {}",
                                clip(&target.to_string_lossy())
                            ),
                        })
                    }
                    Err(e) => {
                        return Err(SetterError::Io {
                            path: next,
                            source: e,
                        })
                    }
                }
                // Inside the root (checked above): go on from its real path, so a `..`
                // after it means the parent of where it points, as the OS reads it.
                current = std::fs::canonicalize(&next).map_err(|e| SetterError::Io {
                    path: next.clone(),
                    source: e,
                })?;
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(SetterError::AbsolutePath {
                    path: clip(relative).into_owned(),
                })
            }
        }
    }
    Ok(current)
}

/// Resolves the tree root for a walk: not itself a symlink, an existing folder, and (with
/// `confine`) inside `confine`, checked component by component. Returns its real path.
pub(crate) fn resolve_tree_root(
    root: &Path,
    confine: Option<&Path>,
) -> Result<PathBuf, SetterError> {
    let invalid = |reason: String| SetterError::InvalidRoot {
        path: clip_path(root),
        reason,
    };
    // `link/` and `link/.` name the link's target: look at the link itself.
    let bare: PathBuf = root.components().collect();
    let meta = std::fs::symlink_metadata(&bare).map_err(|e| invalid(e.to_string()))?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&bare).unwrap_or_default();
        return Err(SetterError::SymlinkRoot {
            path: clip_path(root),
            target: clip_path(&target),
        });
    }
    let real = match confine {
        None => std::fs::canonicalize(root).map_err(|e| invalid(e.to_string()))?,
        Some(confine) => {
            let confine_real =
                std::fs::canonicalize(confine).map_err(|e| SetterError::InvalidRoot {
                    path: clip_path(confine),
                    reason: e.to_string(),
                })?;
            let absolute = |p: &Path| -> Result<PathBuf, SetterError> {
                std::path::absolute(p).map_err(|e| invalid(e.to_string()))
            };
            let (root_abs, confine_abs) = (absolute(root)?, absolute(confine)?);
            match root_abs.strip_prefix(&confine_abs) {
                // Spelled below the confinement root: walk it from there, so a symlink
                // leaving the root at any component is found and named.
                Ok(rel) => resolve_inside(&confine_real, &rel.to_string_lossy())?,
                // Spelled some other way (another spelling of the same folder): its real
                // path decides.
                Err(_) => {
                    let real = std::fs::canonicalize(root).map_err(|e| invalid(e.to_string()))?;
                    if !real.starts_with(&confine_real) {
                        return Err(SetterError::PathEscapesRoot {
                            path: clip(&root.to_string_lossy()).into_owned(),
                        });
                    }
                    real
                }
            }
        }
    };
    if !real.is_dir() {
        return Err(invalid("not a directory".into()));
    }
    Ok(real)
}

/// Temp files of ours: `.tagsmith-` + [`TEMP_RANDOM`] letters and digits + `.tmp`.
pub(crate) const TEMP_PREFIX: &str = ".tagsmith-";
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
pub(crate) const TEMP_RANDOM: usize = 12;

/// Whether `name` is exactly one of our temp file names.
pub(crate) fn is_our_temp_name(name: &str) -> bool {
    name.len() == TEMP_PREFIX.len() + TEMP_RANDOM + TEMP_SUFFIX.len()
        && name.starts_with(TEMP_PREFIX)
        && name.ends_with(TEMP_SUFFIX)
        && name[TEMP_PREFIX.len()..TEMP_PREFIX.len() + TEMP_RANDOM]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Removes temp files a killed run left in `dir`: regular files named exactly as ours,
/// nothing else (not a symlink or folder of that name). Returns the names removed.
pub(crate) fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(is_our_temp_name) {
            continue;
        }
        let path = entry.path();
        let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
        if regular && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Replaces the content of the regular file at `path`, which must still hold `expected`,
/// with `new`, keeping owner, group, mode and hard links:
///
/// - one link: the new content goes to a temp file in the same folder, which gets the
///   file's owner, group and mode (fchown, then fchmod) and is renamed over it: a reader
///   sees the old or the new file, never a mix. When chown is not permitted (not root, the
///   file owned by someone else), the in-place path below is taken instead.
/// - several hard links: renaming would split the links, so the file is rewritten in place
///   through the handle that was checked (write at 0, truncate, fsync).
pub(crate) fn replace_file(path: &Path, expected: &[u8], new: &[u8]) -> Result<(), SetterError> {
    let io = |source| SetterError::Io {
        path: path.to_path_buf(),
        source,
    };
    let conflict = || SetterError::Conflict {
        path: path.to_path_buf(),
    };
    let lmeta = std::fs::symlink_metadata(path).map_err(io)?;
    if !lmeta.file_type().is_file() {
        return Err(conflict());
    }
    let (mut file, meta) = match open_regular(path, false) {
        Ok(opened) => opened,
        Err(ReadError::NotRegular(_)) => return Err(conflict()),
        Err(ReadError::TooLarge(_)) => return Err(conflict()),
        Err(ReadError::Io(e)) => return Err(io(e)),
    };
    let mut current = Vec::with_capacity(expected.len());
    (&mut file)
        .take(expected.len() as u64 + 1)
        .read_to_end(&mut current)
        .map_err(io)?;
    if current != expected {
        return Err(conflict());
    }
    if links(&meta) <= 1 {
        match replace_by_rename(path, &meta, new) {
            Ok(()) => return Ok(()),
            Err(Fallback::InPlace) => {}
            Err(Fallback::Failed(e)) => return Err(io(e)),
        }
    }
    let (mut file, meta_rw) = match open_regular(path, true) {
        Ok(opened) => opened,
        Err(ReadError::Io(e)) => return Err(io(e)),
        Err(_) => return Err(conflict()),
    };
    if !same_file(&meta, &meta_rw) {
        return Err(conflict());
    }
    file.rewind().map_err(io)?;
    file.write_all(new).map_err(io)?;
    file.set_len(new.len() as u64).map_err(io)?;
    file.sync_all().map_err(io)
}

enum Fallback {
    InPlace,
    Failed(std::io::Error),
}

fn replace_by_rename(path: &Path, meta: &Metadata, new: &[u8]) -> Result<(), Fallback> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(TEMP_RANDOM)
        .tempfile_in(dir)
        .map_err(Fallback::Failed)?;
    tmp.write_all(new).map_err(Fallback::Failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let tmp_meta = tmp.as_file().metadata().map_err(Fallback::Failed)?;
        if (tmp_meta.uid(), tmp_meta.gid()) != (meta.uid(), meta.gid()) {
            if let Err(e) =
                std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()))
            {
                // Not permitted (the temp file is dropped, so removed): write in place,
                // which keeps the owner by not creating a file.
                return if e.kind() == std::io::ErrorKind::PermissionDenied {
                    Err(Fallback::InPlace)
                } else {
                    Err(Fallback::Failed(e))
                };
            }
        }
    }
    // After chown, which may clear set-id bits.
    tmp.as_file()
        .set_permissions(meta.permissions())
        .map_err(Fallback::Failed)?;
    tmp.as_file().sync_all().map_err(Fallback::Failed)?;
    tmp.persist(path).map_err(|e| Fallback::Failed(e.error))?;
    Ok(())
}

fn links(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::nlink(meta)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        1
    }
}

fn same_file(a: &Metadata, b: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        assert!(is_our_temp_name(".tagsmith-AbCdEf123456.tmp"));
        for name in [
            ".tagsmith-AbCdEf12345.tmp",
            ".tagsmith-AbCdEf1234567.tmp",
            ".tagsmith-AbCdEf12345-.tmp",
            ".tagsmith-AbCdEf123456.yaml",
            "tagsmith-AbCdEf123456.tmp",
            ".tagsmith-notes",
        ] {
            assert!(!is_our_temp_name(name), "{name}");
        }
    }

    #[test]
    fn temp_files_we_create_match_the_pattern() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .rand_bytes(TEMP_RANDOM)
            .tempfile_in(dir.path())
            .unwrap();
        let name = tmp
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(is_our_temp_name(&name), "{name}");
    }
}
