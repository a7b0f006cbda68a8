//! Trees written by a stranger's pull request: symlinks out of the repository, special
//! files, YAML built to exhaust the stack, temp files left by a killed run, values built to
//! flood error lines. One test per case, named for what it proves.

#![allow(clippy::unwrap_used)]

mod common;

use common::{plan_default, policies, write, MARKED, UPDATED};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use tagsmith_marker_setter::{
    plan_tree, resolve_inside, walk_yaml_files, Policies, SetterError, TreeOptions, TreePlan,
    Warning,
};

/// A repository with `apps/app.yaml` marked; returns (repo, outside folder).
fn repo() -> (tempfile::TempDir, tempfile::TempDir) {
    let repo = tempfile::tempdir().unwrap();
    write(&repo.path().join("apps/app.yaml"), MARKED);
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("secret.yaml"), MARKED);
    (repo, outside)
}

fn confined(repo: &Path) -> TreeOptions {
    TreeOptions {
        confine_to: Some(repo.to_path_buf()),
        ..TreeOptions::default()
    }
}

/// Plans the tree at `rel` of `repo`, confined to `repo`.
fn plan_confined(repo: &Path, rel: &str) -> Result<TreePlan, SetterError> {
    plan_tree(&repo.join(rel), &policies(), &confined(repo))
}

fn warnings(w: &[Warning]) -> Vec<(String, String)> {
    w.iter().map(|w| (w.path.clone(), w.code.clone())).collect()
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Runs `f` on another thread and fails instead of hanging when it blocks (a FIFO opened
/// for reading blocks until a writer comes, forever here).
fn without_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("the walk blocked (a FIFO was opened)")
}

// --- Confinement -------------------------------------------------------------------------

#[test]
fn a_tree_root_that_is_a_symlink_to_etc_is_refused() {
    let (repo, _) = repo();
    symlink("/etc", repo.path().join("etc-link")).unwrap();
    for (opts, given) in [
        (TreeOptions::default(), "etc-link"),
        (confined(repo.path()), "etc-link"),
        (TreeOptions::default(), "etc-link/"),
        (TreeOptions::default(), "etc-link/."),
    ] {
        let err = plan_tree(&repo.path().join(given), &policies(), &opts).unwrap_err();
        assert_eq!(err.code(), "symlink_root", "{err}");
        let message = err.to_string();
        assert!(
            message.contains("etc-link") && message.contains("/etc"),
            "{message}"
        );
        assert!(err.is_invalid_input());
    }
}

#[test]
fn a_tree_root_below_a_symlinked_folder_leaving_the_repository_is_refused() {
    let (repo, outside) = repo();
    write(&outside.path().join("prod/app.yaml"), MARKED);
    symlink(outside.path(), repo.path().join("clusters")).unwrap();
    let err = plan_confined(repo.path(), "clusters/prod").unwrap_err();
    match &err {
        SetterError::SymlinkOutsideRoot { path, target } => {
            assert!(path.ends_with("clusters"), "{err}");
            assert_eq!(target, outside.path());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("prod/app.yaml")).unwrap(),
        MARKED
    );
}

#[test]
fn a_tree_root_climbing_out_with_dotdot_is_refused() {
    let (repo, _) = repo();
    let err = plan_confined(repo.path(), "apps/../..").unwrap_err();
    assert_eq!(err.code(), "path_escapes_root", "{err}");
}

#[test]
fn a_tree_root_elsewhere_than_the_confinement_root_is_refused() {
    let (repo, outside) = repo();
    let err = plan_tree(outside.path(), &policies(), &confined(repo.path())).unwrap_err();
    assert_eq!(err.code(), "path_escapes_root", "{err}");
}

#[test]
fn a_symlinked_parent_pointing_inside_the_repository_is_followed() {
    let (repo, _) = repo();
    write(&repo.path().join("v2/apps/app.yaml"), MARKED);
    symlink("v2", repo.path().join("current")).unwrap();
    let plan = plan_confined(repo.path(), "current/apps").unwrap();
    assert_eq!(plan.result().files[0].path, "app.yaml");
}

#[test]
fn a_symlinked_file_pointing_outside_is_skipped_with_a_warning_naming_it() {
    let (repo, outside) = repo();
    symlink(
        outside.path().join("secret.yaml"),
        repo.path().join("apps/evil.yaml"),
    )
    .unwrap();
    let plan = plan_default(repo.path()).unwrap();
    let w = &plan.result().warnings;
    assert_eq!(
        warnings(w),
        [("apps/evil.yaml".into(), "symlink_outside_root".into())]
    );
    assert!(w[0].message.contains("secret.yaml"), "{}", w[0].message);
    plan.write().unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.yaml")).unwrap(),
        MARKED
    );
}

#[test]
fn a_symlink_to_dev_zero_is_never_read() {
    let (repo, _) = repo();
    symlink("/dev/zero", repo.path().join("apps/zero.yaml")).unwrap();
    let result = without_blocking({
        let root = repo.path().to_path_buf();
        move || plan_default(&root).map(|p| p.result().clone())
    })
    .unwrap();
    assert_eq!(
        warnings(&result.warnings),
        [("apps/zero.yaml".into(), "symlink_outside_root".into())]
    );
}

#[test]
fn a_dangling_symlink_is_reported_as_dangling() {
    let (repo, _) = repo();
    symlink("gone.yaml", repo.path().join("apps/dangling.yaml")).unwrap();
    let plan = plan_default(repo.path()).unwrap();
    let w = &plan.result().warnings;
    assert_eq!(
        warnings(w),
        [("apps/dangling.yaml".into(), "symlink_dangling".into())]
    );
    assert!(w[0].message.contains("gone.yaml"), "{}", w[0].message);
}

#[test]
fn a_symlink_inside_the_tree_is_not_written_through() {
    let (repo, _) = repo();
    symlink("app.yaml", repo.path().join("apps/link.yaml")).unwrap();
    let plan = plan_default(repo.path()).unwrap();
    assert_eq!(plan.changed_paths(), [PathBuf::from("apps/app.yaml")]);
    plan.write().unwrap();
    let link = repo.path().join("apps/link.yaml");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(link).unwrap(), UPDATED);
}

#[test]
fn a_symlink_to_a_file_elsewhere_in_the_repository_is_reported_not_written() {
    let (repo, _) = repo();
    write(&repo.path().join("base/shared.yaml"), MARKED);
    symlink("../base/shared.yaml", repo.path().join("apps/shared.yaml")).unwrap();
    let plan = plan_confined(repo.path(), "apps").unwrap();
    assert_eq!(plan.changed_paths(), [PathBuf::from("app.yaml")]);
    assert_eq!(
        warnings(&plan.result().warnings),
        [("shared.yaml".into(), "symlink_not_written".into())]
    );
    plan.write().unwrap();
    assert_eq!(
        std::fs::read_to_string(repo.path().join("base/shared.yaml")).unwrap(),
        MARKED
    );
}

#[test]
fn symlinked_folders_are_not_followed() {
    let (repo, _) = repo();
    write(&repo.path().join("base/app.yaml"), MARKED);
    symlink("../base", repo.path().join("apps/base")).unwrap();
    let plan = plan_confined(repo.path(), "apps").unwrap();
    assert_eq!(plan.changed_paths(), [PathBuf::from("app.yaml")]);
    assert_eq!(
        warnings(&plan.result().warnings),
        [("base".into(), "symlink_dir_skipped".into())]
    );
}

#[test]
fn resolve_inside_gives_a_distinct_error_for_each_escape() {
    let (repo, outside) = repo();
    std::fs::create_dir_all(repo.path().join("clusters/prod")).unwrap();
    symlink(outside.path(), repo.path().join("clusters/out")).unwrap();
    symlink("nowhere", repo.path().join("clusters/dangling")).unwrap();
    symlink("prod", repo.path().join("clusters/current")).unwrap();
    let code = |rel: &str| resolve_inside(repo.path(), rel).map_err(|e| e.code());
    assert_eq!(code("/etc"), Err("absolute_path"));
    assert_eq!(code("clusters/../../x"), Err("path_escapes_root"));
    assert_eq!(
        code("clusters/out/secret.yaml"),
        Err("symlink_outside_root")
    );
    assert_eq!(code("clusters/missing"), Err("path_not_found"));
    assert_eq!(code("clusters/dangling"), Err("path_not_found"));
    let real = std::fs::canonicalize(repo.path().join("clusters/prod")).unwrap();
    assert_eq!(
        resolve_inside(repo.path(), "./clusters/current/").unwrap(),
        real
    );
    assert_eq!(
        resolve_inside(repo.path(), "clusters/current/../prod").unwrap(),
        real
    );
    assert_eq!(
        resolve_inside(repo.path(), "").unwrap(),
        std::fs::canonicalize(repo.path()).unwrap()
    );
    let dangling = resolve_inside(repo.path(), "clusters/dangling").unwrap_err();
    assert!(dangling.to_string().contains("dangling"), "{dangling}");
}

#[test]
fn set_keeps_working_on_the_folder_a_repository_path_resolves_to() {
    let (repo, _) = repo();
    let apps = resolve_inside(repo.path(), "apps").unwrap();
    let plan = plan_tree(&apps, &policies(), &confined(repo.path())).unwrap();
    plan.write().unwrap();
    assert_eq!(
        std::fs::read_to_string(repo.path().join("apps/app.yaml")).unwrap(),
        UPDATED
    );
}

// --- Special files -----------------------------------------------------------------------

#[test]
fn a_fifo_named_yaml_is_skipped_without_blocking() {
    let (repo, _) = repo();
    mkfifo(&repo.path().join("apps/pipe.yaml"));
    let root = repo.path().to_path_buf();
    let result = without_blocking(move || plan_default(&root).map(|p| p.result().clone())).unwrap();
    assert_eq!(result.files.len(), 1);
    assert_eq!(
        warnings(&result.warnings),
        [("apps/pipe.yaml".into(), "special_file".into())]
    );
    assert!(result.warnings[0].message.contains("FIFO"));
}

#[test]
fn a_symlink_to_a_fifo_elsewhere_in_the_repository_is_not_opened() {
    let (repo, _) = repo();
    mkfifo(&repo.path().join("pipe.yaml"));
    symlink("../pipe.yaml", repo.path().join("apps/pipe.yaml")).unwrap();
    let (root, opts) = (repo.path().join("apps"), confined(repo.path()));
    let result =
        without_blocking(move || plan_tree(&root, &policies(), &opts).map(|p| p.result().clone()))
            .unwrap();
    assert_eq!(
        warnings(&result.warnings),
        [("pipe.yaml".into(), "special_file".into())]
    );
}

#[test]
fn a_socket_named_yaml_is_skipped() {
    let (repo, _) = repo();
    let _listener =
        std::os::unix::net::UnixListener::bind(repo.path().join("apps/sock.yaml")).unwrap();
    let plan = plan_default(repo.path()).unwrap();
    assert_eq!(
        warnings(&plan.result().warnings),
        [("apps/sock.yaml".into(), "special_file".into())]
    );
}

#[test]
fn a_file_over_the_size_cap_is_skipped_with_a_warning() {
    let (repo, _) = repo();
    let big = format!("{MARKED}# {}\n", "x".repeat(200));
    write(&repo.path().join("apps/big.yaml"), &big);
    let opts = TreeOptions {
        max_file_size: 100,
        ..TreeOptions::default()
    };
    let plan = plan_tree(repo.path(), &policies(), &opts).unwrap();
    assert_eq!(plan.changed_paths(), [PathBuf::from("apps/app.yaml")]);
    assert_eq!(
        warnings(&plan.result().warnings),
        [("apps/big.yaml".into(), "file_too_large".into())]
    );
}

#[test]
fn walk_yaml_files_applies_the_setters_rules() {
    let (repo, outside) = repo();
    mkfifo(&repo.path().join("apps/pipe.yaml"));
    symlink(
        outside.path().join("secret.yaml"),
        repo.path().join("apps/evil.yaml"),
    )
    .unwrap();
    write(&repo.path().join("apps/Kustomization"), "resources: []\n");
    write(&repo.path().join(".git/config.yaml"), "a: 1\n");
    write(&repo.path().join("apps/notes.txt"), "a: 1\n");
    let root = repo.path().to_path_buf();
    let mut items: Vec<(String, String)> = without_blocking(move || {
        walk_yaml_files(&root, &TreeOptions::default())
            .unwrap()
            .map(|item| match item {
                Ok(f) => {
                    assert!(f.text().is_some());
                    (f.relative_path, "read".to_string())
                }
                Err(w) => (w.path, w.code),
            })
            .collect()
    });
    items.sort();
    let want: Vec<(String, String)> = [
        ("apps/Kustomization", "read"),
        ("apps/app.yaml", "read"),
        ("apps/evil.yaml", "symlink_outside_root"),
        ("apps/pipe.yaml", "special_file"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(items, want);
    // Dropping the iterator early stops the walk.
    let mut some = walk_yaml_files(repo.path(), &TreeOptions::default()).unwrap();
    assert!(some.next().is_some());
    drop(some);
}

// --- YAML limits -------------------------------------------------------------------------

#[test]
fn yaml_nested_ten_thousand_levels_is_skipped_and_the_rest_of_the_tree_is_updated() {
    let (repo, _) = repo();
    let deep = format!("{}{MARKED}", "- ".repeat(10_000));
    write(&repo.path().join("apps/deep.yaml"), &deep);
    let plan = plan_default(repo.path()).unwrap();
    assert_eq!(plan.changed_paths(), [PathBuf::from("apps/app.yaml")]);
    let w = &plan.result().warnings;
    assert_eq!(
        warnings(w),
        [("apps/deep.yaml".into(), "yaml_limit".into())]
    );
    assert_eq!(w[0].line, 1);
    assert!(w[0].message.contains("512"), "{}", w[0].message);
}

#[test]
fn an_alias_bomb_is_skipped_with_a_warning() {
    let (repo, _) = repo();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        ));
    }
    bomb.push_str(MARKED);
    write(&repo.path().join("apps/bomb.yaml"), &bomb);
    let plan = plan_default(repo.path()).unwrap();
    assert_eq!(plan.changed_paths(), [PathBuf::from("apps/app.yaml")]);
    assert_eq!(
        warnings(&plan.result().warnings),
        [("apps/bomb.yaml".into(), "yaml_limit".into())]
    );
}

// --- Temp files of a killed run ----------------------------------------------------------

#[test]
fn stale_temp_files_of_ours_are_removed_before_writing_and_nothing_else() {
    let (repo, _) = repo();
    let apps = repo.path().join("apps");
    // What a `kill -9` between creating and renaming the temp file leaves.
    let stale = apps.join(".tagsmith-AbCdEf123456.tmp");
    write(&stale, "half a file");
    let keep = [
        ".tagsmith-notes.tmp",
        ".tagsmith-AbCdEf123456.tmp.bak",
        ".tagsmith-AbCdEf12345.tmp",
        "tagsmith-AbCdEf123456.tmp",
    ];
    for name in keep {
        write(&apps.join(name), "mine");
    }
    // Named like ours, but a folder and a symlink: not ours to remove.
    std::fs::create_dir(apps.join(".tagsmith-Folder123456.tmp")).unwrap();
    symlink("app.yaml", apps.join(".tagsmith-Linked123456.tmp")).unwrap();
    let plan = plan_default(repo.path()).unwrap();
    assert!(stale.exists(), "planning removes nothing");
    plan.write().unwrap();
    assert!(!stale.exists(), "the stale temp file is removed");
    for name in keep {
        assert_eq!(std::fs::read_to_string(apps.join(name)).unwrap(), "mine");
    }
    assert!(apps.join(".tagsmith-Folder123456.tmp").is_dir());
    assert!(std::fs::symlink_metadata(apps.join(".tagsmith-Linked123456.tmp")).is_ok());
}

// --- Bounded messages --------------------------------------------------------------------

#[test]
fn a_one_megabyte_image_reference_is_not_quoted_whole_in_the_error() {
    let huge = format!("app:{}", "1".repeat(1 << 20));
    let err = Policies::from_map([("ns:app", huge.as_str())]).unwrap_err();
    let message = err.to_string();
    assert!(message.len() < 600, "{} bytes", message.len());
    assert!(message.contains("ns:app"));
    let key = "é".repeat(1 << 19);
    let message = Policies::from_map([(key.as_str(), "app:1")])
        .unwrap_err()
        .to_string();
    assert!(message.len() < 600, "{} bytes", message.len());
}

#[test]
fn a_huge_marker_or_scalar_in_a_file_is_clipped_in_its_warning() {
    let (repo, _) = repo();
    let name = "n".repeat(1 << 20);
    write(
        &repo.path().join("apps/big.yaml"),
        &format!(
            "a: x # {{\"$imagepolicy\": \"ns:{name}\"}}\nb: x # {{\"$imagepolicy\": \"{name}\"}}\nc:\n  # {{\"$imagepolicy\": \"ns:app\"}}\n  - x # {name}\n"
        ),
    );
    let plan = plan_default(repo.path()).unwrap();
    let w = &plan.result().warnings;
    let codes: Vec<&str> = w.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(
        codes,
        ["unknown_policy", "invalid_marker", "marker_unattached"]
    );
    for w in w {
        assert!(
            w.message.len() <= 600,
            "{}: {} bytes",
            w.code,
            w.message.len()
        );
    }
}
