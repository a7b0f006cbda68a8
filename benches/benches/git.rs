//! Commit and push of a 200-file change in a 20k-file repository: tagsmith
//! (`commit_and_push` on git2) compared in the same run with the git CLI doing the same
//! (`git add` of the 200 files, `git commit`, `git push`) to a bare remote on this machine.

#![allow(missing_docs)]

use criterion::{criterion_group, Criterion};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tagsmith::git::{
    commit_and_push, ApplyOutcome, CommitOptions, PushOutcome, PushTarget, Repository, Signature,
};
use tagsmith_benches::best_of;

const FILES: usize = 20_000;
const CHANGED: usize = 200;

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

fn setup(root: &Path) -> (PathBuf, PathBuf) {
    let remote = root.join("remote.git");
    git(
        root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            remote.to_str().expect("utf8"),
        ],
    );
    let seed = root.join("seed");
    std::fs::create_dir_all(&seed).expect("mkdir");
    git(&seed, &["init", "-q", "-b", "main"]);
    for i in 0..FILES {
        let dir = seed.join(format!("apps/team{:03}", i % 200));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(format!("svc{i:05}.yaml")),
            format!("image: reg.example.com/app{i}:1.0.0\n"),
        )
        .expect("write");
    }
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-q", "-m", "initial"]);
    git(
        &seed,
        &["remote", "add", "origin", remote.to_str().expect("utf8")],
    );
    git(&seed, &["push", "-q", "origin", "main", "main:cli"]);
    let a = root.join("tagsmith");
    let b = root.join("cli");
    git(
        root,
        &[
            "clone",
            "-q",
            "-b",
            "main",
            remote.to_str().expect("utf8"),
            a.to_str().expect("utf8"),
        ],
    );
    git(
        root,
        &[
            "clone",
            "-q",
            "-b",
            "cli",
            remote.to_str().expect("utf8"),
            b.to_str().expect("utf8"),
        ],
    );
    (a, b)
}

fn change(dir: &Path, round: usize) -> Vec<PathBuf> {
    (0..CHANGED)
        .map(|k| {
            let i = k * (FILES / CHANGED);
            let rel = PathBuf::from(format!("apps/team{:03}/svc{i:05}.yaml", i % 200));
            std::fs::write(
                dir.join(&rel),
                format!("image: reg.example.com/app{i}:1.0.{round}\n"),
            )
            .expect("write");
            rel
        })
        .collect()
}

fn bench_git(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = setup(tmp.path());
    let repo = Repository::open(&a).expect("open");
    let who = CommitOptions {
        author: Signature {
            name: "bench".into(),
            email: "bench@example.com".into(),
        },
        committer: None,
    };
    let mut round = 0usize;
    let mut tagsmith_once = || {
        round += 1;
        let r = round;
        let out = commit_and_push(
            &repo,
            &who,
            &PushTarget::default(),
            "origin",
            1,
            &mut |dir| {
                Ok(ApplyOutcome {
                    changed_files: change(dir, r),
                    message: format!("round {r}"),
                })
            },
        )
        .expect("push");
        assert!(matches!(out, PushOutcome::Pushed { .. }));
    };
    let mut cli_round = 0usize;
    let mut cli_once = || {
        cli_round += 1;
        let files = change(&b, cli_round);
        let mut args = vec!["add", "--"];
        let names: Vec<String> = files
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        args.extend(names.iter().map(String::as_str));
        git(&b, &args);
        git(&b, &["commit", "-q", "-m", &format!("round {cli_round}")]);
        git(&b, &["push", "-q", "origin", "cli"]);
    };
    let mut group = c.benchmark_group("git/commit-push-200-of-20k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("tagsmith (git2)", |bch| bch.iter(&mut tagsmith_once));
    group.bench_function("git CLI", |bch| bch.iter(&mut cli_once));
    group.finish();

    let best = |f: &mut dyn FnMut()| best_of(5, f);
    let ours = best(&mut tagsmith_once);
    let theirs = best(&mut cli_once);
    println!(
        "\n| workload | tagsmith | git CLI | git / tagsmith |\n|---|---:|---:|---:|\n| commit + push {CHANGED} of {FILES} files | {:.1} ms | {:.1} ms | {:.2}x |",
        ours.as_secs_f64() * 1e3,
        theirs.as_secs_f64() * 1e3,
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}

criterion_group!(benches, bench_git);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
