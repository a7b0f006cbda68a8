//! What a write keeps (owner, group, mode, hard links) and what a failed write undoes.

#![allow(clippy::unwrap_used)]

mod common;

use common::{plan_default, write, MARKED, UPDATED};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn running_as_root() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "").unwrap();
    std::fs::metadata(&probe).unwrap().uid() == 0
}

/// Every file under `root` with its bytes, temp files included.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_write_keeps_the_file_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    write(&file, MARKED);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    plan_default(dir.path()).unwrap().write().unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), UPDATED);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o640);
}

#[test]
fn a_write_keeps_hard_links() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apps/app.yaml");
    write(&file, MARKED);
    let other = dir.path().join("copy-elsewhere.txt");
    std::fs::hard_link(&file, &other).unwrap();
    let inode = std::fs::metadata(&file).unwrap().ino();
    plan_default(&dir.path().join("apps"))
        .unwrap()
        .write()
        .unwrap();
    let (a, b) = (
        std::fs::metadata(&file).unwrap(),
        std::fs::metadata(&other).unwrap(),
    );
    assert_eq!((a.ino(), b.ino(), a.nlink()), (inode, inode, 2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), UPDATED);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), UPDATED);
}

#[test]
fn a_write_keeps_the_owner_and_group() {
    if !running_as_root() {
        eprintln!("skipped: giving a file to another owner needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.yaml");
    write(&file, MARKED);
    std::os::unix::fs::chown(&file, Some(4321), Some(4322)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    plan_default(dir.path()).unwrap().write().unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (4321, 4322, 0o604)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), UPDATED);
}

/// Three marked files, `a`, `b`, `c`, written in that order.
fn three_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c"] {
        write(&dir.path().join(format!("{name}/{name}.yaml")), MARKED);
    }
    dir
}

#[test]
fn a_file_replaced_by_a_folder_fails_the_write_and_every_file_written_is_restored() {
    let dir = three_files();
    let plan = plan_default(dir.path()).unwrap();
    let c = dir.path().join("c/c.yaml");
    std::fs::remove_file(&c).unwrap();
    std::fs::create_dir(&c).unwrap();
    let before = snapshot(dir.path());
    let err = plan.write().unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(err.to_string().contains("c/c.yaml"), "{err}");
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a and b restored, no temp file left"
    );
    // A later run finds the whole tree still to do, not half of it.
    std::fs::remove_dir(&c).unwrap();
    write(&c, MARKED);
    let again = plan_default(dir.path()).unwrap();
    assert_eq!(again.changed_paths().len(), 3);
}

#[test]
fn a_file_edited_since_planning_fails_the_write_and_every_file_written_is_restored() {
    let dir = three_files();
    let plan = plan_default(dir.path()).unwrap();
    let b = dir.path().join("b/b.yaml");
    write(&b, "edited: meanwhile\n");
    let before = snapshot(dir.path());
    let err = plan.write().unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(err.to_string().contains("b/b.yaml"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_read_only_folder_fails_the_write_and_every_file_written_is_restored() {
    if running_as_root() {
        eprintln!(
            "skipped: root writes into read-only folders (the other rollback tests cover root)"
        );
        return;
    }
    let dir = three_files();
    let plan = plan_default(dir.path()).unwrap();
    let b = dir.path().join("b");
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o555)).unwrap();
    let before = snapshot(dir.path());
    let err = plan.write();
    std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = err.unwrap_err();
    assert_eq!(err.code(), "io", "{err}");
    assert!(err.to_string().contains("b/b.yaml"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn unchanged_files_are_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("same.yaml");
    write(&same, UPDATED);
    write(&dir.path().join("changed.yaml"), MARKED);
    let inode = std::fs::metadata(&same).unwrap().ino();
    let mtime = std::fs::metadata(&same).unwrap().modified().unwrap();
    let written = plan_default(dir.path()).unwrap().write().unwrap();
    assert_eq!(written, [std::path::PathBuf::from("changed.yaml")]);
    let meta = std::fs::metadata(&same).unwrap();
    assert_eq!((meta.ino(), meta.modified().unwrap()), (inode, mtime));
}
