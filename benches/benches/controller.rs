//! `tagsmith controller` at scale, against the floor, in one run: 1,000 ImageRepositories,
//! 1,000 ImagePolicies and 50 ImageUpdateAutomations (50 namespaces of 20 images, one
//! automation each, pushing to its own branch of one smart-HTTP remote) on a real
//! kube-apiserver with Flux's CRDs and the loopback registry.
//!
//! Measured: the time from the controller's start until every object is Ready (all 1,000
//! scans, 1,000 selections, 50 clones, commits and pushes, every status written); the
//! floor, the same 1,000 tag listings by a plain loop over the same HTTP client
//! (registry-scan's `OciTagSource`), measured before and after (the better one counts);
//! then a steady-state minute (intervals of 1 minute: every repository scanned again)
//! with the process's CPU and resident memory.
//!
//! A plain binary (`harness = false`): criterion's repeated sampling does not fit a
//! minutes-long scenario. Run: `cargo bench -p tagsmith-benches --bench controller`.

#![allow(missing_docs, clippy::unwrap_used)]

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tagsmith::registry::{OciTagSource, RegistryOptions, TagSource};
use tagsmith_controller::ControllerOptions;
use tagsmith_testkit::git::{BareRemote, HttpGitServer};
use tagsmith_testkit::kube::KubeApiServer;
use tagsmith_testkit::registry::LocalRegistry;
use tokio_util::sync::CancellationToken;

const NAMESPACES: usize = 50;
const PER_NAMESPACE: usize = 20;
const TAGS: [&str; 5] = ["1.0.0", "1.0.1", "1.0.2", "1.1.0", "1.2.0"];
const STEADY: Duration = Duration::from_secs(60);

fn ns(i: usize) -> String {
    format!("bench-{i:02}")
}

fn image(registry: &LocalRegistry, n: usize, m: usize) -> String {
    format!("{}/{}/app-{m:02}", registry.host, ns(n))
}

/// (utime + stime) of this process in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    ticks / hz
}

/// `VmRSS` and `VmHWM` of this process in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn post(kube: &KubeApiServer, path: &str, object: &Value) {
    let (status, answer) = kube.request("POST", path, "application/json", Some(object));
    assert!(
        (200..300).contains(&status),
        "POST {path}: {status} {answer}"
    );
}

fn ready_count(kube: &KubeApiServer, plural: &str) -> usize {
    let list = kube.get(&format!("/apis/image.toolkit.fluxcd.io/v1/{plural}"));
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|o| {
                    o["status"]["observedGeneration"] == o["metadata"]["generation"]
                        && o["status"]["conditions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
                .count()
        })
        .unwrap_or(0)
}

fn floor(rt: &tokio::runtime::Runtime, images: &[String]) -> Duration {
    let source = OciTagSource::new(RegistryOptions {
        insecure: true,
        ..RegistryOptions::default()
    })
    .unwrap();
    let started = Instant::now();
    rt.block_on(async {
        for image in images {
            let tags = source.list_tags(image).await.unwrap();
            assert_eq!(tags.len(), TAGS.len());
        }
    });
    started.elapsed()
}

fn main() {
    let Some(kube) = KubeApiServer::start() else {
        return;
    };
    let registry = LocalRegistry::start();
    let images: Vec<String> = (0..NAMESPACES)
        .flat_map(|n| (0..PER_NAMESPACE).map(move |m| (n, m)))
        .map(|(n, m)| image(&registry, n, m))
        .collect();
    let seeding = Instant::now();
    std::thread::scope(|scope| {
        for chunk in images.chunks(images.len() / 4) {
            let registry = &registry;
            scope.spawn(move || {
                for image in chunk {
                    let repo = image.split_once('/').unwrap().1;
                    registry.seed(repo, &TAGS.map(String::from));
                }
            });
        }
    });
    eprintln!("seeded {} images in {:?}", images.len(), seeding.elapsed());

    // One remote; each namespace's automation updates its own folder and pushes its own
    // branch (no push races between automations).
    let files: Vec<(String, String)> = (0..NAMESPACES)
        .map(|n| {
            let containers: String = (0..PER_NAMESPACE)
                .map(|m| {
                    format!(
                        "      - name: app-{m:02}\n        image: {}:1.0.0 # {{\"$imagepolicy\": \"{}:app-{m:02}\"}}\n",
                        image(&registry, n, m),
                        ns(n)
                    )
                })
                .collect();
            (
                format!("apps/{:02}/deploy.yaml", n),
                format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: apps\nspec:\n  template:\n    spec:\n      containers:\n{containers}"),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let remote = BareRemote::with_files(&borrowed);
    let http = HttpGitServer::start(remote.base(), "flux", "bench-password");
    let url = http.url("remote.git");

    let applying = Instant::now();
    for n in 0..NAMESPACES {
        let namespace = ns(n);
        kube.create_namespace(&namespace);
        let base = format!("/apis/image.toolkit.fluxcd.io/v1/namespaces/{namespace}");
        post(
            &kube,
            &format!("/api/v1/namespaces/{namespace}/secrets"),
            &json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git"},
            "stringData": {"username": "flux", "password": "bench-password"}}),
        );
        post(
            &kube,
            &format!("/apis/source.toolkit.fluxcd.io/v1/namespaces/{namespace}/gitrepositories"),
            &json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": {"name": "fleet"},
            "spec": {"interval": "1m", "url": url, "ref": {"branch": "main"}, "secretRef": {"name": "git"}}}),
        );
        for m in 0..PER_NAMESPACE {
            let name = format!("app-{m:02}");
            post(
                &kube,
                &format!("{base}/imagerepositories"),
                &json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository", "metadata": {"name": name},
                "spec": {"image": image(&registry, n, m), "interval": "1m", "insecure": true}}),
            );
            post(
                &kube,
                &format!("{base}/imagepolicies"),
                &json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy", "metadata": {"name": name},
                "spec": {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": ">=1.0.0"}}}}),
            );
        }
        post(
            &kube,
            &format!("{base}/imageupdateautomations"),
            &json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation", "metadata": {"name": "fleet"},
            "spec": {"interval": "1m", "sourceRef": {"kind": "GitRepository", "name": "fleet"},
                     "git": {"checkout": {"ref": {"branch": "main"}},
                             "commit": {"author": {"name": "bot", "email": "bot@example.com"}},
                             "push": {"branch": format!("auto-{n:02}")}},
                     "update": {"path": format!("./apps/{n:02}"), "strategy": "Setters"}}}),
        );
    }
    eprintln!(
        "applied {} objects in {:?}",
        NAMESPACES * (2 * PER_NAMESPACE + 3),
        applying.elapsed()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let floor_before = floor(&rt, &images);

    let storage = tempfile::tempdir().unwrap();
    let options = ControllerOptions {
        kubeconfig: Some(kube.kubeconfig().to_path_buf()),
        metrics_addr: "127.0.0.1:0".into(),
        health_addr: "0".into(),
        storage_path: storage.path().join("data"),
        // Flux's default (4) unless TAGSMITH_BENCH_CONCURRENT says otherwise.
        concurrent: std::env::var("TAGSMITH_BENCH_CONCURRENT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4),
        ..ControllerOptions::default()
    };
    eprintln!("--concurrent {}", options.concurrent);
    let token = CancellationToken::new();
    let (cpu0, started) = (cpu_seconds(), Instant::now());
    let controller = rt
        .block_on(tagsmith_controller::start(options, token.clone()))
        .unwrap();
    let total = NAMESPACES * PER_NAMESPACE;
    let deadline = Instant::now() + Duration::from_secs(900);
    // Polled through the controller's own metrics (Ready as it last wrote it): listing
    // 2,000 objects from the API server four times a second would load the machine being
    // measured. The API server confirms at the end.
    let metrics = controller.metrics_addr.unwrap();
    let mut milestones: [Option<Duration>; 3] = [None; 3];
    let to_ready = loop {
        let text = ureq::get(&format!("http://{metrics}/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let ready = |kind: &str| {
            text.lines()
                .filter(|l| {
                    l.starts_with(&format!("gotk_reconcile_condition{{kind=\"{kind}\""))
                        && l.contains("status=\"True\"")
                        && l.ends_with(" 1")
                })
                .count()
        };
        let counts = (
            ready("ImageRepository"),
            ready("ImagePolicy"),
            ready("ImageUpdateAutomation"),
        );
        for (i, (count, all)) in [(counts.0, total), (counts.1, total), (counts.2, NAMESPACES)]
            .into_iter()
            .enumerate()
        {
            if count == all && milestones[i].is_none() {
                milestones[i] = Some(started.elapsed());
            }
        }
        if counts == (total, total, NAMESPACES) {
            break started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "not all Ready in 15 minutes: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let counts = (
        ready_count(&kube, "imagerepositories"),
        ready_count(&kube, "imagepolicies"),
        ready_count(&kube, "imageupdateautomations"),
    );
    assert_eq!(counts, (total, total, NAMESPACES), "the API server's view");
    let reconciles = ureq::get(&format!("http://{metrics}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    let cpu_to_ready = cpu_seconds() - cpu0;
    let pushed = (0..NAMESPACES)
        .filter(|n| remote.tip(&format!("auto-{n:02}")).is_some())
        .count();
    assert_eq!(pushed, NAMESPACES, "every automation pushed its branch");
    let (rss_ready, _) = memory_mib();

    let floor_after = floor(&rt, &images);
    let floor = floor_before.min(floor_after);

    // Steady state: nothing changes; every repository comes due again within the minute.
    let cpu1 = cpu_seconds();
    std::thread::sleep(STEADY);
    let steady_cpu = (cpu_seconds() - cpu1) / STEADY.as_secs_f64();
    let (rss, hwm) = memory_mib();
    token.cancel();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), controller.wait()).await })
        .unwrap()
        .unwrap();

    println!("controller: {total} ImageRepositories, {total} ImagePolicies, {NAMESPACES} ImageUpdateAutomations ({counts:?} Ready)");
    for line in &reconciles {
        println!("  {line}");
    }
    println!(
        "  all ImageRepositories Ready after {:.2} s, all ImagePolicies after {:.2} s, all automations after {:.2} s",
        milestones[0].unwrap_or_default().as_secs_f64(),
        milestones[1].unwrap_or_default().as_secs_f64(),
        milestones[2].unwrap_or_default().as_secs_f64()
    );
    println!(
        "  time until all Ready: {:.2} s ({:.1} CPU s in this process)",
        to_ready.as_secs_f64(),
        cpu_to_ready
    );
    println!(
        "  floor (the same {total} listings, one loop, one client): {:.2} s (before {:.2} s, after {:.2} s)",
        floor.as_secs_f64(),
        floor_before.as_secs_f64(),
        floor_after.as_secs_f64()
    );
    println!(
        "  ratio: {:.2}x the floor",
        to_ready.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  steady state (1m intervals, {}s window): {:.1}% of one core",
        STEADY.as_secs(),
        steady_cpu * 100.0
    );
    println!("  RSS: {rss_ready:.1} MiB when all Ready, {rss:.1} MiB after the steady minute, peak {hwm:.1} MiB");
}
