//! A generated monorepo (20k YAML files, 2k of them with markers, about 50 MB) updated in
//! one call, compared in the same run with `grep -rl '$imagepolicy'` over the same tree:
//! the I/O floor of finding the marked files at all. Planning (read, screen, parse, rewrite
//! in memory) is measured; writing is measured once separately, on a fresh copy each time.
//!
//! Flux's setter is measured in the same run through the Go harness in
//! `benches/go/flux-setter`: image-automation-controller's module is not served by the Go
//! module proxy (403 for every version), so the harness rebuilds `UpdateWithSetters`'s
//! pipeline (token screening, kyaml `ByteReader`, `fieldmeta` setters) from kyaml itself,
//! run with `-dry-run` so that, like `plan_tree`, it reads and computes but writes nothing.

#![allow(missing_docs)]

use criterion::{criterion_group, Criterion, Throughput};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tagsmith::setter::{plan_tree, Policies, TreeOptions};
use tagsmith_benches::best_of;
use tagsmith_benches::Rng;

const FILES: usize = 20_000;
const MARKED_EVERY: usize = 10;

/// Writes the monorepo: Deployments of about 2.5 KB each, every 10th with markers.
fn generate(root: &Path, files: usize) -> u64 {
    generate_marking(root, files, MARKED_EVERY)
}

/// The same files, every `marked_every`th with markers.
fn generate_marking(root: &Path, files: usize, marked_every: usize) -> u64 {
    let mut rng = Rng(42);
    let mut bytes = 0u64;
    for i in 0..files {
        let dir = root.join(format!("apps/team{:03}/svc{:04}", i % 200, i));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let marker = i % marked_every == 0;
        let mut doc = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc{i}\n  namespace: team{}\n  labels:\n    app: svc{i}\n    tier: backend\nspec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: svc{i}\n  template:\n    metadata:\n      labels:\n        app: svc{i}\n    spec:\n      containers:\n        - name: app\n",
            i % 200,
            1 + rng.below(5)
        );
        if marker {
            doc.push_str(&format!(
                "          image: reg.example.com/team/app{}:1.0.{} # {{\"$imagepolicy\": \"flux-system:app{}\"}}\n",
                i % 50,
                rng.below(9),
                i % 50
            ));
        } else {
            doc.push_str(&format!(
                "          image: reg.example.com/team/app{}:1.0.0\n",
                i % 50
            ));
        }
        for k in 0..20 {
            doc.push_str(&format!(
                "          # padding line {k} to reach realistic sizes\n          env{k}: \"value-{}\"\n",
                rng.below(1_000_000)
            ));
        }
        doc.push_str("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  ports:\n    - port: 80\n");
        bytes += doc.len() as u64;
        std::fs::write(dir.join("deployment.yaml"), doc).expect("write");
    }
    bytes
}

fn policies() -> Policies {
    Policies::from_map((0..50).map(|i| {
        (
            format!("flux-system:app{i}"),
            format!("reg.example.com/team/app{i}:2.0.0"),
        )
    }))
    .expect("policies")
}

fn flux_setter(bin: &Path, policies: &Path, root: &Path) -> usize {
    let out = Command::new(bin)
        .arg("-policies")
        .arg(policies)
        .arg("-dry-run")
        .arg(root)
        .output()
        .expect("run flux-setter");
    assert!(out.status.success(), "flux-setter failed");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    report["changes"].as_array().map_or(0, Vec::len)
}

fn grep_floor(root: &Path) -> usize {
    let out = Command::new("grep")
        .args(["-rl", "$imagepolicy"])
        .arg(root)
        .output()
        .expect("run grep");
    out.stdout.iter().filter(|&&b| b == b'\n').count()
}

fn bench_tree(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = generate(dir.path(), FILES);
    let policies = policies();
    let opts = TreeOptions::default();
    let tools = tempfile::tempdir().expect("tempdir");
    let policies_json = tools.path().join("policies.json");
    let map: serde_json::Map<String, serde_json::Value> = policies
        .iter()
        .map(|(k, r)| (k.to_string(), serde_json::Value::String(r.to_string())))
        .collect();
    std::fs::write(&policies_json, serde_json::Value::Object(map).to_string()).expect("write");
    let flux = tagsmith_benches::build_go("benches/go/flux-setter", "flux-setter");
    if flux.is_none() {
        eprintln!("go not found or harness build failed: Flux baseline skipped");
    }
    let mut group = c.benchmark_group("setter/monorepo-20k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("tagsmith plan_tree", |b| {
        b.iter(|| {
            let plan = plan_tree(dir.path(), &policies, &opts).expect("plan");
            assert_eq!(plan.result().files.len(), FILES / MARKED_EVERY);
        })
    });
    group.bench_function("grep -rl floor", |b| {
        b.iter(|| assert_eq!(grep_floor(dir.path()), FILES / MARKED_EVERY))
    });
    if let Some(bin) = &flux {
        group.bench_function("flux setter (kyaml harness)", |b| {
            b.iter(|| {
                assert_eq!(
                    flux_setter(bin, &policies_json, dir.path()),
                    FILES / MARKED_EVERY
                )
            })
        });
    }
    group.finish();

    // Ratio and the write step, best of 5, printed for docs/benchmarks.md.
    let best = |f: &mut dyn FnMut()| best_of(5, f);
    let plan_time = best(&mut || {
        plan_tree(dir.path(), &policies, &opts).expect("plan");
    });
    let grep_time = best(&mut || {
        grep_floor(dir.path());
    });
    let flux_time = flux.as_ref().map(|bin| {
        best(&mut || {
            flux_setter(bin, &policies_json, dir.path());
        })
    });
    // Linearity: the same tree at a quarter of the size.
    let small = tempfile::tempdir().expect("tempdir");
    let small_bytes = generate(small.path(), FILES / 4);
    let small_time = best(&mut || {
        plan_tree(small.path(), &policies, &opts).expect("plan");
    });
    let plan = plan_tree(dir.path(), &policies, &opts).expect("plan");
    let t = Instant::now();
    plan.write().expect("write");
    let write_time = t.elapsed();
    println!(
        "\n| tree | tagsmith plan | grep -rl floor | tagsmith / grep | write {} files |\n|---|---:|---:|---:|---:|\n| {} files, {:.1} MB | {:.1} ms | {:.1} ms | {:.2}x | {:.1} ms |",
        plan.result().files.len(),
        FILES,
        bytes as f64 / 1e6,
        plan_time.as_secs_f64() * 1e3,
        grep_time.as_secs_f64() * 1e3,
        plan_time.as_secs_f64() / grep_time.as_secs_f64(),
        write_time.as_secs_f64() * 1e3,
    );
    if let Some(flux_time) = flux_time {
        println!(
            "| Flux setter (kyaml harness, dry run) | {:.1} ms | Flux / tagsmith | {:.1}x |",
            flux_time.as_secs_f64() * 1e3,
            flux_time.as_secs_f64() / plan_time.as_secs_f64()
        );
    }
    println!(
        "| linearity | {} files, {:.1} MB: {:.1} ms | 4x the files: {:.2}x the time |",
        FILES / 4,
        small_bytes as f64 / 1e6,
        small_time.as_secs_f64() * 1e3,
        plan_time.as_secs_f64() / small_time.as_secs_f64()
    );

    // The setter's own work, without the 18,000 files both sides skip unparsed: a tree of
    // only the 2,000 marked files.
    if let Some(bin) = &flux {
        let marked = tempfile::tempdir().expect("tempdir");
        let marked_bytes = generate_marking(marked.path(), FILES / MARKED_EVERY, 1);
        let ours = best(&mut || {
            plan_tree(marked.path(), &policies, &opts).expect("plan");
        });
        let theirs = best(&mut || {
            assert_eq!(
                flux_setter(bin, &policies_json, marked.path()),
                FILES / MARKED_EVERY
            );
        });
        println!(
            "| marked files only | {} files, {:.1} MB: tagsmith {:.1} ms | Flux setter {:.1} ms | {:.1}x |",
            FILES / MARKED_EVERY,
            marked_bytes as f64 / 1e6,
            ours.as_secs_f64() * 1e3,
            theirs.as_secs_f64() * 1e3,
            theirs.as_secs_f64() / ours.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench_tree);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
