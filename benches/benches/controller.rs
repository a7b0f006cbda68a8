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
//! with the process's CPU and resident memory; then, with the controller stopped, the API
//! floor: the Kubernetes writes Flux's behaviour requires for these objects (one status
//! merge patch per object, of the status body the controller wrote, and one Event per
//! object), by a plain loop over kube's client at the controller's concurrency (`--concurrent`
//! per kind, the three kinds at once), nothing read, nothing reconciled.
//!
//! The API server's own request counter (`apiserver_request_total` on its `/metrics`, by
//! verb and resource) is read before the controller starts and when everything is Ready:
//! the difference is what the controller asked of it (nothing else talks to it then), so
//! redundant writes and reads show. The CPU of the API server and etcd (this process's
//! children) is read over the same window.
//!
//! A plain binary (`harness = false`): criterion's repeated sampling does not fit a
//! minutes-long scenario. Run: `cargo bench -p tagsmith-benches --bench controller`.

#![allow(missing_docs, clippy::unwrap_used)]

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
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

/// `apiserver_request_total` (and the summed request seconds) by "VERB resource[/sub]".
#[derive(Default, Clone)]
struct Requests {
    count: BTreeMap<String, f64>,
    seconds: BTreeMap<String, f64>,
}

fn label<'a>(labels: &'a str, name: &str) -> &'a str {
    let needle = format!("{name}=\"");
    labels
        .split_once(&needle)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(value, _)| value)
}

fn api_requests(kube: &KubeApiServer) -> Requests {
    let (status, text) = kube.request("GET", "/metrics", "", None);
    assert_eq!(status, 200, "the API server's /metrics");
    let text = text.as_str().unwrap_or_default().to_string();
    let mut out = Requests::default();
    for line in text.lines() {
        let (map, rest) = if let Some(rest) = line.strip_prefix("apiserver_request_total{") {
            (&mut out.count, rest)
        } else if let Some(rest) = line.strip_prefix("apiserver_request_duration_seconds_sum{") {
            (&mut out.seconds, rest)
        } else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let resource = match label(labels, "subresource") {
            "" => label(labels, "resource").to_string(),
            sub => format!("{}/{sub}", label(labels, "resource")),
        };
        let key = format!("{} {resource}", label(labels, "verb"));
        *map.entry(key).or_default() += value.trim().parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// `after - before`, the nonzero entries, largest first; and the total count.
fn requests_between(before: &Requests, after: &Requests) -> (Vec<(String, f64, f64)>, f64) {
    let mut rows: Vec<(String, f64, f64)> = after
        .count
        .iter()
        .map(|(k, v)| {
            let n = v - before.count.get(k).copied().unwrap_or(0.0);
            let s = after.seconds.get(k).copied().unwrap_or(0.0)
                - before.seconds.get(k).copied().unwrap_or(0.0);
            (k.clone(), n, s)
        })
        .filter(|(_, n, _)| *n > 0.0)
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total = rows.iter().map(|r| r.1).sum();
    (rows, total)
}

fn print_requests(title: &str, rows: &[(String, f64, f64)], total: f64) {
    println!("  {title}: {total:.0}");
    for (key, n, seconds) in rows {
        println!(
            "    {n:>6.0}  {key:<42} ({:.1} ms each in the API server)",
            seconds / n * 1000.0
        );
    }
}

/// CPU seconds of this process's children (the API server, etcd, the registry) by name.
fn children_cpu() -> BTreeMap<String, f64> {
    let me = std::process::id().to_string();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some((head, after)), Some(open)) = (stat.rsplit_once(')'), stat.find('(')) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        if fields.get(1) != Some(&me.as_str()) {
            continue;
        }
        let ticks: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        *out.entry(head[open + 1..].to_string()).or_default() += ticks / 100.0;
    }
    out
}

fn cpu_between(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> String {
    after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v >= 0.05)
        .map(|(k, v)| format!("{k} {v:.1} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The three image kinds: API resource, the Flux controller that writes them.
fn image_kinds() -> [(ApiResource, &'static str); 3] {
    [
        (
            "ImageRepository",
            "imagerepositories",
            "image-reflector-controller",
        ),
        ("ImagePolicy", "imagepolicies", "image-reflector-controller"),
        (
            "ImageUpdateAutomation",
            "imageupdateautomations",
            "image-automation-controller",
        ),
    ]
    .map(|(kind, plural, component)| {
        let gvk = GroupVersionKind::gvk("image.toolkit.fluxcd.io", "v1", kind);
        (ApiResource::from_gvk_with_plural(&gvk, plural), component)
    })
}

async fn kube_client(kube: &KubeApiServer) -> Client {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    let kubeconfig = Kubeconfig::read_from(kube.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn now_seconds() -> k8s_openapi::jiff::Timestamp {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap()
}

/// The API floor: for every image object, one merge patch of `/status` with the status
/// the controller wrote (its Ready transition time moved, so the API server writes it) and
/// one Event as Flux records it; `concurrent` at a time per kind, the kinds at once.
async fn api_floor(client: &Client, concurrent: usize) -> Duration {
    let mut work = Vec::new();
    for (resource, component) in image_kinds() {
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let items = all.list(&ListParams::default()).await.unwrap().items;
        work.push((resource, component, items));
    }
    let started = Instant::now();
    let now = now_seconds();
    let kinds = work.iter().map(|(resource, component, items)| {
        futures::stream::iter(items).for_each_concurrent(concurrent, move |obj| async move {
            let (namespace, name) = (obj.namespace().unwrap(), obj.name_any());
            let mut status = obj.data["status"].clone();
            let mut message = String::new();
            for condition in status["conditions"].as_array_mut().into_iter().flatten() {
                condition["lastTransitionTime"] = json!(now.to_string());
                if condition["type"] == "Ready" {
                    message = condition["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                }
            }
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &namespace, resource);
            let params = PatchParams {
                field_manager: Some((*component).into()),
                ..PatchParams::default()
            };
            api.patch_status(&name, &params, &Patch::Merge(&json!({ "status": status })))
                .await
                .unwrap();
            let at = k8s_openapi::jiff::Timestamp::now();
            let event = Event {
                metadata: ObjectMeta {
                    name: Some(format!("{name}.{:x}", at.as_nanosecond())),
                    namespace: Some(namespace.clone()),
                    ..ObjectMeta::default()
                },
                involved_object: ObjectReference {
                    api_version: Some(resource.api_version.clone()),
                    kind: Some(resource.kind.clone()),
                    name: Some(name.clone()),
                    namespace: Some(namespace.clone()),
                    uid: obj.metadata.uid.clone(),
                    resource_version: obj.metadata.resource_version.clone(),
                    ..ObjectReference::default()
                },
                reason: Some("Succeeded".into()),
                message: Some(message),
                type_: Some("Normal".into()),
                source: Some(EventSource {
                    component: Some((*component).into()),
                    host: None,
                }),
                first_timestamp: Some(Time(at)),
                last_timestamp: Some(Time(at)),
                count: Some(1),
                reporting_component: Some((*component).into()),
                reporting_instance: Some("bench-floor".into()),
                ..Event::default()
            };
            let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
            events.create(&PostParams::default(), &event).await.unwrap();
        })
    });
    futures::future::join_all(kinds).await;
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
    let concurrent = options.concurrent;
    let token = CancellationToken::new();
    let (requests0, children0) = (api_requests(&kube), children_cpu());
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
    let (requests1, children1) = (api_requests(&kube), children_cpu());
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
    let (cpu1, requests2, children2) = (cpu_seconds(), api_requests(&kube), children_cpu());
    std::thread::sleep(STEADY);
    let steady_cpu = (cpu_seconds() - cpu1) / STEADY.as_secs_f64();
    let (requests3, children3) = (api_requests(&kube), children_cpu());
    let (rss, hwm) = memory_mib();
    token.cancel();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), controller.wait()).await })
        .unwrap()
        .unwrap();

    // The API floor, with the controller stopped (nothing else writes meanwhile).
    let client = rt.block_on(kube_client(&kube));
    let (requests4, children4) = (api_requests(&kube), children_cpu());
    let api_floor = rt.block_on(api_floor(&client, usize::from(concurrent).max(1)));
    let (requests5, children5) = (api_requests(&kube), children_cpu());

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
        "  API floor (one status patch + one Event per object, {} objects, {concurrent} per kind at once, plain kube client): {:.2} s",
        2 * total + NAMESPACES,
        api_floor.as_secs_f64()
    );
    let both = floor + api_floor;
    println!(
        "  ratio: {:.2}x (tag floor + API floor = {:.2} s), {:.2}x the tag floor, {:.2}x the API floor",
        to_ready.as_secs_f64() / both.as_secs_f64(),
        both.as_secs_f64(),
        to_ready.as_secs_f64() / floor.as_secs_f64(),
        to_ready.as_secs_f64() / api_floor.as_secs_f64()
    );
    let (rows, n) = requests_between(&requests0, &requests1);
    print_requests(
        "API requests by the controller, start to all Ready",
        &rows,
        n,
    );
    println!(
        "  CPU of the API server and etcd, start to all Ready: {}",
        cpu_between(&children0, &children1)
    );
    let (rows, n) = requests_between(&requests2, &requests3);
    print_requests(
        "API requests by the controller in the steady minute",
        &rows,
        n,
    );
    println!(
        "  CPU of the API server and etcd in the steady minute: {}",
        cpu_between(&children2, &children3)
    );
    let (rows, n) = requests_between(&requests4, &requests5);
    print_requests("API requests of the API floor", &rows, n);
    println!(
        "  CPU of the API server and etcd in the API floor: {}",
        cpu_between(&children4, &children5)
    );
    println!(
        "  steady state (1m intervals, {}s window): {:.1}% of one core",
        STEADY.as_secs(),
        steady_cpu * 100.0
    );
    println!("  RSS: {rss_ready:.1} MiB when all Ready, {rss:.1} MiB after the steady minute, peak {hwm:.1} MiB");
}
