//! Golden trees: `testdata/setter/golden/<case>/input` rewritten with the case's policies
//! must equal `expected` byte for byte, with the case's warnings (path, code).

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagsmith_marker_setter::{plan_tree, Policies, TreeOptions};

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/setter/golden")
}

fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(rel, std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in read_tree(from) {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::write(dest, bytes).expect("write");
    }
}

#[test]
fn golden_cases() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_root())
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "golden cases missing");
    for case in cases {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(case.join("case.json")).expect("case.json"),
        )
        .expect("case JSON");
        let policies = Policies::from_map(
            meta["policies"]
                .as_object()
                .expect("policies")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("ref").to_string())),
        )
        .expect("valid policies");
        let work = tempfile::tempdir().expect("tempdir");
        copy_tree(&case.join("input"), work.path());
        // `.git` cannot be committed inside the repository, so it is made here: its YAML
        // holds a marker that must never be touched.
        let git_yaml = "image: x # {\"$imagepolicy\": \"flux-system:checkout\"}\n";
        std::fs::create_dir_all(work.path().join(".git")).expect("mkdir .git");
        std::fs::write(work.path().join(".git/config.yaml"), git_yaml).expect("write");

        let plan = plan_tree(work.path(), &policies, &TreeOptions::default()).expect("plan");
        let before = read_tree(work.path());
        let diff = plan.unified_diff();
        assert_eq!(
            read_tree(work.path()),
            before,
            "{name}: planning wrote files"
        );
        plan.write().expect("write");

        let mut got = read_tree(work.path());
        assert_eq!(
            got.remove(".git/config.yaml").as_deref(),
            Some(git_yaml.as_bytes()),
            "{name}: .git touched"
        );
        let expected = read_tree(&case.join("expected"));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (rel, want) in &expected {
            assert!(
                got[rel] == *want,
                "{name}/{rel} differs:\n--- got\n{}\n--- want\n{}",
                String::from_utf8_lossy(&got[rel]),
                String::from_utf8_lossy(want)
            );
        }
        let mut warnings: Vec<(String, String)> = plan
            .result()
            .warnings
            .iter()
            .map(|w| (w.path.clone(), w.code.clone()))
            .collect();
        let mut want_warnings: Vec<(String, String)> = meta["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .map(|w| {
                (
                    w[0].as_str().expect("path").into(),
                    w[1].as_str().expect("code").into(),
                )
            })
            .collect();
        warnings.sort();
        want_warnings.sort();
        assert_eq!(warnings, want_warnings, "{name}: warnings");
        for w in &plan.result().warnings {
            assert!(w.line > 0, "{name}: warning without a line: {w}");
        }
        let changed = plan.result().files.len();
        assert_eq!(
            diff.matches("+++ b/").count(),
            changed,
            "{name}: one diff per changed file"
        );
    }
}

#[test]
fn modes_are_kept_and_unchanged_files_are_not_written() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let changed = dir.path().join("a.yaml");
    let same = dir.path().join("b.yaml");
    std::fs::write(&changed, "image: old # {\"$imagepolicy\": \"ns:app\"}\n").expect("write");
    std::fs::write(&same, "image: app:2 # {\"$imagepolicy\": \"ns:app\"}\n").expect("write");
    std::fs::set_permissions(&changed, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let same_mtime = std::fs::metadata(&same)
        .expect("meta")
        .modified()
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let policies = Policies::from_map([("ns:app", "app:2")]).expect("policies");
    let result = tagsmith_marker_setter::apply_tree(dir.path(), &policies, &TreeOptions::default())
        .expect("apply");
    assert_eq!(result.files.len(), 1);
    assert_eq!(result.files_with_markers, 2);
    let mode = std::fs::metadata(&changed)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    assert_eq!(
        std::fs::metadata(&same)
            .expect("meta")
            .modified()
            .expect("mtime"),
        same_mtime
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with(".tagsmith-")
        })
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");
}

#[test]
fn a_file_changed_after_planning_is_not_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, "image: old # {\"$imagepolicy\": \"ns:app\"}\n").expect("write");
    let policies = Policies::from_map([("ns:app", "app:2")]).expect("policies");
    let plan = plan_tree(dir.path(), &policies, &TreeOptions::default()).expect("plan");
    std::fs::write(&file, "edited: by someone else\n").expect("write");
    let err = plan.write().expect_err("conflict");
    assert_eq!(err.code(), "conflict");
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "edited: by someone else\n"
    );
}

#[test]
fn symlinks_are_not_followed_out_of_the_root() {
    let outside = tempfile::tempdir().expect("tempdir");
    let target = outside.path().join("secret.yaml");
    std::fs::write(&target, "image: old # {\"$imagepolicy\": \"ns:app\"}\n").expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&target, dir.path().join("link.yaml")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked-dir")).expect("symlink");
    let policies = Policies::from_map([("ns:app", "app:2")]).expect("policies");
    let result = tagsmith_marker_setter::apply_tree(dir.path(), &policies, &TreeOptions::default())
        .expect("apply");
    assert!(result.files.is_empty());
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "image: old # {\"$imagepolicy\": \"ns:app\"}\n"
    );
    assert!(result
        .warnings
        .iter()
        .any(|w| w.code == "symlink_outside_root" && w.path == "link.yaml"));
}

#[test]
fn missing_root_is_an_error() {
    let err = plan_tree(
        Path::new("/nonexistent/tagsmith"),
        &Policies::new(),
        &TreeOptions::default(),
    )
    .expect_err("missing root");
    assert_eq!(err.code(), "invalid_root");
    assert!(err.to_string().contains("/nonexistent/tagsmith"));
}

#[test]
fn include_and_exclude_globs_select_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marked = "image: old # {\"$imagepolicy\": \"ns:app\"}\n";
    for rel in [
        "apps/a.yaml",
        "apps/skip/b.yaml",
        "infra/c.yml",
        "apps/d.json",
    ] {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, marked).expect("write");
    }
    let policies = Policies::from_map([("ns:app", "app:2")]).expect("policies");
    let changed = |opts: TreeOptions| -> Vec<String> {
        plan_tree(dir.path(), &policies, &opts)
            .expect("plan")
            .changed_paths()
            .iter()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .collect()
    };
    assert_eq!(
        changed(TreeOptions::default()),
        ["apps/a.yaml", "apps/skip/b.yaml", "infra/c.yml"]
    );
    assert_eq!(
        changed(TreeOptions {
            include: vec!["apps/**".into()],
            exclude: vec!["**/skip/**".into()],
            ..TreeOptions::default()
        }),
        ["apps/a.yaml"]
    );
    // `*` does not cross folders.
    assert_eq!(
        changed(TreeOptions {
            include: vec!["*.yaml".into()],
            ..TreeOptions::default()
        }),
        Vec::<String>::new()
    );
    let err = plan_tree(
        dir.path(),
        &policies,
        &TreeOptions {
            include: vec!["apps/[".into()],
            ..TreeOptions::default()
        },
    )
    .expect_err("bad glob");
    assert_eq!(err.code(), "invalid_glob");
    assert!(err.to_string().contains("apps/["), "{err}");
}

#[test]
fn huge_and_non_utf8_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    // About 12 MB in one multi-document file, a marker every 100th line.
    let mut huge = String::new();
    let mut expected = String::new();
    for i in 0..100_000 {
        if i % 100 == 0 {
            huge.push_str(&format!(
                "---\nkind: Pod\nmetadata:\n  name: p{i}\nimage: reg.example.com/app:1.0.0 # {{\"$imagepolicy\": \"ns:app\"}}\n"
            ));
            expected.push_str(&format!(
                "---\nkind: Pod\nmetadata:\n  name: p{i}\nimage: reg.example.com/app:2.0.0 # {{\"$imagepolicy\": \"ns:app\"}}\n"
            ));
        } else {
            let line =
                format!("key{i}: \"value with some padding to make lines longer {i}\"  # note\n");
            huge.push_str(&line);
            expected.push_str(&line);
        }
    }
    std::fs::write(dir.path().join("huge.yaml"), &huge).expect("write");
    // Latin-1 bytes: not UTF-8, so left as is with a warning.
    let latin1 = b"name: caf\xe9\nimage: old # {\"$imagepolicy\": \"ns:app\"}\n";
    std::fs::write(dir.path().join("latin1.yaml"), latin1).expect("write");

    let policies = Policies::from_map([("ns:app", "reg.example.com/app:2.0.0")]).expect("policies");
    let result = tagsmith_marker_setter::apply_tree(dir.path(), &policies, &TreeOptions::default())
        .expect("apply");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("huge.yaml")).expect("read"),
        expected
    );
    assert_eq!(result.changes().count(), 1_000);
    let objects: Vec<_> = result.files[0].objects.iter().collect();
    assert_eq!(objects.len(), 1_000, "one object per document");
    assert_eq!(objects[1].object.name.as_deref(), Some("p100"));
    assert_eq!(
        std::fs::read(dir.path().join("latin1.yaml")).expect("read"),
        latin1
    );
    let codes: Vec<(&str, &str)> = result
        .warnings
        .iter()
        .map(|w| (w.path.as_str(), w.code.as_str()))
        .collect();
    assert_eq!(codes, [("latin1.yaml", "not_utf8")]);
}
