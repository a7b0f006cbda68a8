//! Tag selection over 1k, 100k and 1M generated tags for each policy, with and without
//! pattern + extract, in criterion; then the same workloads through Flux's Go code
//! (Masterminds semver + fluxcd/pkg/version, via tests/go/semver-oracle) in the same run,
//! printed as ratios (`target/go-bench/policy-vs-go.md`).

#![allow(missing_docs)]

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};
use tagsmith::policy::{ImagePolicy, Order, PolicySpec};
use tagsmith_benches::{
    build_go, main_build_tags, numeric_tags, repo_root, semver_tags, timestamp_tags,
};

const TIMESTAMP: &str = r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$";
const SEMVER_IN_BUILD: &str = r"^v?(?P<v>[0-9]+\.[0-9]+\.[0-9]+)$";
/// Flux's documented numerical example: the group is not at the start of the tag.
const MAIN_TIMESTAMP: &str = r"^main-[a-fA-F0-9]+-(?P<ts>.*)";

/// One workload: a name, the tags, the tagsmith spec, and the Go oracle's arguments.
struct Workload {
    name: &'static str,
    tags: Vec<String>,
    spec: PolicySpec,
    go_args: Vec<String>,
}

fn workloads(n: usize) -> Vec<Workload> {
    let semver = semver_tags(n, 1);
    vec![
        Workload {
            name: "semver",
            tags: semver.clone(),
            spec: PolicySpec::semver(">=1.0.0 <50.0.0"),
            go_args: vec!["semver".into(), ">=1.0.0 <50.0.0".into()],
        },
        Workload {
            name: "semver+extract",
            tags: semver.clone(),
            spec: PolicySpec::semver(">=1.0.0 <50.0.0")
                .with_pattern(SEMVER_IN_BUILD)
                .with_extract("$v"),
            go_args: vec![
                "semver".into(),
                ">=1.0.0 <50.0.0".into(),
                SEMVER_IN_BUILD.into(),
                "$v".into(),
            ],
        },
        Workload {
            name: "alphabetical",
            tags: semver,
            spec: PolicySpec::alphabetical(Order::Asc),
            go_args: vec!["alphabetical".into(), "asc".into()],
        },
        Workload {
            name: "alphabetical+extract",
            tags: timestamp_tags(n, 2),
            spec: PolicySpec::alphabetical(Order::Asc)
                .with_pattern(TIMESTAMP)
                .with_extract("$ts"),
            go_args: vec![
                "alphabetical".into(),
                "asc".into(),
                TIMESTAMP.into(),
                "$ts".into(),
            ],
        },
        Workload {
            name: "numerical+extract",
            tags: main_build_tags(n, 4),
            spec: PolicySpec::numerical(Order::Asc)
                .with_pattern(MAIN_TIMESTAMP)
                .with_extract("$ts"),
            go_args: vec![
                "numerical".into(),
                "asc".into(),
                MAIN_TIMESTAMP.into(),
                "$ts".into(),
            ],
        },
        Workload {
            name: "numerical",
            tags: numeric_tags(n, 3),
            spec: PolicySpec::numerical(Order::Asc),
            go_args: vec!["numerical".into(), "asc".into()],
        },
    ]
}

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

fn bench_policies(c: &mut Criterion) {
    for n in SIZES {
        let mut group = c.benchmark_group(format!("policy/{n}"));
        group.throughput(Throughput::Elements(n as u64));
        if n >= 100_000 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(3));
        }
        for w in workloads(n) {
            let policy = ImagePolicy::new(&w.spec).expect("valid spec");
            group.bench_with_input(BenchmarkId::from_parameter(w.name), &w.tags, |b, tags| {
                b.iter(|| policy.select(black_box(tags)).expect("a tag is chosen"))
            });
        }
        group.finish();
    }
}

/// Best-of-k wall time of one tagsmith selection.
fn time_rust(policy: &ImagePolicy, tags: &[String], k: usize) -> (Duration, String) {
    let mut best = Duration::MAX;
    let mut latest = String::new();
    for _ in 0..k {
        let start = Instant::now();
        latest = policy.select(tags).expect("a tag is chosen");
        best = best.min(start.elapsed());
    }
    (best, latest)
}

/// The Go oracle's own timing loop (ns per selection, averaged over `k`), so process start
/// and reading the tag file are not counted.
fn time_go(oracle: &std::path::Path, w: &Workload, k: usize) -> (Duration, String) {
    let dir = repo_root().join("target/go-bench");
    let file = dir.join(format!("tags-{}-{}.txt", w.name, w.tags.len()));
    let mut f = std::fs::File::create(&file).expect("tag file");
    for t in &w.tags {
        writeln!(f, "{t}").expect("write tags");
    }
    let mut best = Duration::MAX;
    let mut latest = String::new();
    for _ in 0..3 {
        let out = Command::new(oracle)
            .arg("bench")
            .arg(&file)
            .arg(&w.go_args[0])
            .arg(&w.go_args[1])
            .arg(k.to_string())
            .args(&w.go_args[2..])
            .output()
            .expect("run Go oracle");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let (ns, tag) = text.trim().split_once(' ').expect("ns tag");
        best = best.min(Duration::from_nanos(ns.parse().expect("ns")));
        latest = tag.to_string();
    }
    (best, latest)
}

fn compare_with_go() {
    let Some(oracle) = build_go("tests/go/semver-oracle", "semver-oracle") else {
        eprintln!("go is not installed: skipping the Go comparison");
        return;
    };
    let mut report = String::from(
        "| workload | tags | tagsmith | Go (Flux code) | Go / tagsmith |\n|---|---:|---:|---:|---:|\n",
    );
    for n in SIZES {
        let k = if n >= 1_000_000 {
            3
        } else if n >= 100_000 {
            10
        } else {
            200
        };
        for w in workloads(n) {
            let policy = ImagePolicy::new(&w.spec).expect("valid spec");
            let (rust, rust_latest) = time_rust(&policy, &w.tags, k);
            let (go, go_latest) = time_go(&oracle, &w, k);
            // Same answer, or the comparison means nothing (extract ties aside, these
            // workloads have a unique latest).
            assert_eq!(rust_latest, go_latest, "{} at {n}: answers differ", w.name);
            report.push_str(&format!(
                "| {} | {n} | {:.3} ms | {:.3} ms | {:.1}x |\n",
                w.name,
                rust.as_secs_f64() * 1e3,
                go.as_secs_f64() * 1e3,
                go.as_secs_f64() / rust.as_secs_f64()
            ));
        }
    }
    println!("\n{report}");
    let path = repo_root().join("target/go-bench/policy-vs-go.md");
    std::fs::write(&path, &report).expect("write report");
    println!("written to {}", path.display());
}

criterion_group!(benches, bench_policies);

fn main() {
    if std::env::args().any(|a| a == "--go-only") {
        compare_with_go();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    compare_with_go();
}
