//! Listing 10k tags from a real registry (Debian's docker-registry on loopback) through
//! tagsmith's `OciTagSource`, compared in the same run with a plain HTTP paging loop (the
//! floor: one GET per page, JSON decode, nothing else); and 100 images scanned with
//! `scan_many` (16 at a time) compared with the same 100 scanned one after another.

#![allow(missing_docs)]

use criterion::{criterion_group, Criterion};
use std::sync::Arc;
use std::time::Duration;
use tagsmith::policy::Exclusions;
use tagsmith::registry::{scan, scan_many, OciTagSource, RegistryOptions, ScanRequest, TagSource};
use tagsmith_benches::best_of;
use tagsmith_testkit::registry::LocalRegistry;

const TAGS: usize = 10_000;
const IMAGES: usize = 100;

fn plain_http_list(host: &str, repo: &str) -> usize {
    let mut tags = 0usize;
    let mut last: Option<String> = None;
    loop {
        let mut url = format!("http://{host}/v2/{repo}/tags/list?n=1000");
        if let Some(l) = &last {
            url.push_str(&format!("&last={l}"));
        }
        let body = ureq::get(&url)
            .call()
            .expect("GET")
            .body_mut()
            .read_to_string()
            .expect("body");
        let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let list = page["tags"].as_array().cloned().unwrap_or_default();
        let new = list.len();
        tags += new;
        // distribution 2.8 ignores n and returns everything at once; follow `last` like a
        // paging client would until a page adds nothing.
        if new < 1000 || last.as_deref() == list.last().and_then(|v| v.as_str()) {
            break;
        }
        last = list.last().and_then(|v| v.as_str()).map(str::to_string);
        if tags >= TAGS {
            break;
        }
    }
    tags
}

fn bench_registry(c: &mut Criterion) {
    let registry = LocalRegistry::start();
    let tags: Vec<String> = (0..TAGS)
        .map(|i| format!("1.{}.{}", i / 100, i % 100))
        .collect();
    registry.seed("bench/app", &tags);
    for i in 0..IMAGES {
        registry.seed(
            &format!("bench/svc{i}"),
            &[format!("{i}.0.0"), format!("{i}.1.0")],
        );
    }
    let host = registry.host.clone();
    let image = format!("{host}/bench/app");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let source = Arc::new(
        OciTagSource::new(RegistryOptions {
            insecure: true,
            ..RegistryOptions::default()
        })
        .expect("source"),
    );
    let mut group = c.benchmark_group("registry");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("tagsmith list 10k tags", |b| {
        b.iter(|| {
            assert_eq!(
                rt.block_on(source.list_tags(&image)).expect("tags").len(),
                TAGS
            )
        })
    });
    group.bench_function("plain HTTP list 10k tags", |b| {
        b.iter(|| assert_eq!(plain_http_list(&host, "bench/app"), TAGS))
    });
    group.finish();

    let requests = || -> Vec<ScanRequest> {
        (0..IMAGES)
            .map(|i| ScanRequest {
                image: format!("{host}/bench/svc{i}"),
                source: Arc::clone(&source) as Arc<dyn TagSource>,
                exclusions: Exclusions::flux_default(),
            })
            .collect()
    };
    let best = |f: &mut dyn FnMut()| best_of(5, f);
    let list = best(&mut || {
        rt.block_on(source.list_tags(&image)).expect("tags");
    });
    let floor = best(&mut || {
        plain_http_list(&host, "bench/app");
    });
    let concurrent = best(&mut || {
        let results = rt.block_on(scan_many(requests(), 16));
        assert!(results.iter().all(Result::is_ok));
    });
    let sequential = best(&mut || {
        for r in requests() {
            rt.block_on(scan(r.source.as_ref(), &r.image, &r.exclusions))
                .expect("scan");
        }
    });
    println!(
        "\n| workload | tagsmith | baseline | ratio |\n|---|---:|---:|---:|\n| list {TAGS} tags | {:.1} ms | plain HTTP loop {:.1} ms | {:.2}x of the floor |\n| scan {IMAGES} images, 16 at a time | {:.1} ms | one after another {:.1} ms | {:.1}x faster |",
        list.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        list.as_secs_f64() / floor.as_secs_f64(),
        concurrent.as_secs_f64() * 1e3,
        sequential.as_secs_f64() * 1e3,
        sequential.as_secs_f64() / concurrent.as_secs_f64(),
    );
}

criterion_group!(benches, bench_registry);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
