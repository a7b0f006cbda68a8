//! Against a real registry (Debian's docker-registry on loopback) and a scripted loopback
//! server for the faults a real registry will not produce on demand.

use std::sync::Arc;
use std::time::Duration;
use tagsmith_image_policy_core::Exclusions;
use tagsmith_registry_scan::{
    scan, scan_many, Credentials, OciTagSource, RegistryOptions, RetryPolicy, ScanError,
    ScanRequest, Secret, TagSource, DEFAULT_MAX_BODY_BYTES,
};
use tagsmith_testkit::http::{FaultServer, Reply};
use tagsmith_testkit::registry::LocalRegistry;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A runtime with two worker threads, for scans that must run side by side.
fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total: Duration::from_secs(10),
    }
}

fn insecure(credentials: Credentials) -> OciTagSource {
    OciTagSource::new(RegistryOptions {
        insecure: true,
        credentials,
        retry: fast_retries(),
        timeout: Duration::from_secs(2),
        ..RegistryOptions::default()
    })
    .expect("source")
}

#[test]
fn lists_thousands_of_tags_from_a_real_registry() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    let mut tags: Vec<String> = (0..3000)
        .map(|i| format!("1.{}.{}", i / 100, i % 100))
        .collect();
    tags.push("sha256-abc.sig".into());
    let digest = registry.seed("team/app", &tags);
    let image = format!("{}/team/app", registry.host);
    let rt = runtime();
    let source = insecure(Credentials::Anonymous);
    let result = rt
        .block_on(scan(&source, &image, &Exclusions::flux_default()))
        .expect("scan");
    assert_eq!(result.tag_count, 3000);
    assert_eq!(result.excluded_count, 1);
    assert!(!result.tags.iter().any(|t| t.ends_with(".sig")));
    assert_eq!(result.latest_tags.len(), 10);
    assert_eq!(result.latest_tags[0], "1.9.99");
    let resolved = rt
        .block_on(source.resolve_digest(&image, "1.2.3"))
        .expect("digest");
    assert_eq!(resolved, digest);
}

#[test]
fn basic_auth_and_docker_config() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start_with_auth("robot", "s3cret-pass");
    registry.seed("team/private", &["1.0.0".to_string(), "1.1.0".to_string()]);
    let image = format!("{}/team/private", registry.host);
    let rt = runtime();

    let good = insecure(Credentials::Basic {
        username: "robot".into(),
        password: Secret::new("s3cret-pass"),
    });
    assert_eq!(rt.block_on(good.list_tags(&image)).expect("tags").len(), 2);

    let wrong = insecure(Credentials::Basic {
        username: "robot".into(),
        password: Secret::new("nope"),
    });
    let err = rt.block_on(wrong.list_tags(&image)).expect_err("refused");
    assert_eq!(err.code(), "auth_failed", "{err}");
    assert!(err.to_string().contains(&registry.host));
    assert!(!err.to_string().contains("nope"), "secret leaked: {err}");
    assert!(!format!("{wrong:?}").contains("nope"), "secret in Debug");

    let err = rt
        .block_on(insecure(Credentials::Anonymous).list_tags(&image))
        .expect_err("anonymous refused");
    assert_eq!(err.code(), "auth_failed");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths": {{"{}": {{"username": "robot", "password": "s3cret-pass"}}}}}}"#,
            registry.host
        ),
    )
    .expect("write config");
    let from_config = insecure(Credentials::DockerConfig(config));
    assert_eq!(
        rt.block_on(from_config.list_tags(&image))
            .expect("tags")
            .len(),
        2
    );
}

#[test]
fn unknown_repository_is_not_found() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    let rt = runtime();
    let err = rt
        .block_on(insecure(Credentials::Anonymous).list_tags(&format!("{}/no/such", registry.host)))
        .expect_err("missing");
    assert_eq!(err.code(), "not_found", "{err}");
}

/// A registry on loopback: answers the `/v2/` version check with `{}` and every other
/// request with `script` (its path and index), at most `max_requests` in all.
fn scripted_registry(
    max_requests: usize,
    script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static,
) -> FaultServer {
    FaultServer::start(max_requests, move |path, index| {
        if path == "/v2/" {
            return Reply::json(200, "{}");
        }
        script(path, index)
    })
}

/// The image `team/app` on `server`.
fn app(server: &FaultServer) -> String {
    format!("{}/team/app", server.host)
}

/// `team/app`'s tags on `server`, listed anonymously with fast retries.
fn list_anonymously(server: &FaultServer) -> Result<Vec<String>, ScanError> {
    runtime().block_on(insecure(Credentials::Anonymous).list_tags(&app(server)))
}

fn tags_json(tags: &[&str]) -> String {
    serde_json::json!({"name": "team/app", "tags": tags}).to_string()
}

#[test]
fn retries_429_then_succeeds() {
    let server = scripted_registry(50, |_, _| {
        Reply::json(
            429,
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
        )
        .header("Retry-After", "0")
    });
    // The script above always says 429: the scan must give up with a clear error.
    let err = list_anonymously(&server).expect_err("rate limited");
    assert_eq!(err.code(), "rate_limited", "{err}");
    assert!(err.to_string().contains(&server.host));
    assert!(err.to_string().contains("4 times"), "{err}");

    // Now two 429s, then the tags.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let server = scripted_registry(50, move |_, _| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            Reply::json(429, "").header("Retry-After", "0")
        } else {
            Reply::json(200, &tags_json(&["1.0.0", "2.0.0"]))
        }
    });
    let tags = list_anonymously(&server).expect("retried to success");
    assert_eq!(tags, ["1.0.0", "2.0.0"]);
}

#[test]
fn retries_5xx_and_reports_the_status_when_giving_up() {
    let server = scripted_registry(50, |_, _| Reply::json(503, "unavailable"));
    let err = list_anonymously(&server).expect_err("gives up");
    assert_eq!(err.code(), "http");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
    let tag_requests = tag_requests(&server);
    assert_eq!(tag_requests, 4);
}

#[test]
fn follows_pages_like_docker_hub() {
    // 2500 tags served 1000 at a time, continuing after `last`, with a Link header.
    let all: Vec<String> = (0..2500).map(|i| format!("t{i:05}")).collect();
    let server = paging_server(all, 1000, true);
    let tags = list_anonymously(&server).expect("pages");
    assert_eq!(tags.len(), 2500);
    assert_eq!(tags[2499], "t02499");
    let pages = tag_requests(&server);
    assert_eq!(pages, 3);
}

#[test]
fn slow_and_truncated_answers_fail_clearly() {
    let server = scripted_registry(50, |_, _| {
        let mut r = Reply::json(200, &tags_json(&["1.0.0"]));
        r.delay = Duration::from_secs(4);
        r
    });
    let err = list_anonymously(&server).expect_err("times out");
    assert_eq!(err.code(), "timeout", "{err}");
    assert!(err.to_string().contains(&server.host));
    assert!(err.to_string().contains("4 times"), "{err}");

    let server = scripted_registry(50, |_, _| {
        let mut r = Reply::json(200, &tags_json(&["1.0.0"]));
        r.truncate = true;
        r
    });
    let err = list_anonymously(&server).expect_err("truncated");
    assert_eq!(err.code(), "http", "{err}");
}

#[test]
fn many_images_concurrently_each_with_its_own_result() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    for i in 0..5 {
        registry.seed(
            &format!("team/app{i}"),
            &[format!("{i}.0.0"), format!("{i}.1.0")],
        );
    }
    let source: Arc<dyn TagSource> = Arc::new(insecure(Credentials::Anonymous));
    let mut requests: Vec<ScanRequest> = (0..5)
        .map(|i| ScanRequest {
            image: format!("{}/team/app{i}", registry.host),
            source: Arc::clone(&source),
            exclusions: Exclusions::flux_default(),
        })
        .collect();
    requests.push(ScanRequest {
        image: format!("{}/team/missing", registry.host),
        source: Arc::clone(&source),
        exclusions: Exclusions::flux_default(),
    });
    let rt = two_worker_runtime();
    let results = rt.block_on(scan_many(requests, 3));
    for (i, r) in results.iter().take(5).enumerate() {
        let mut tags = r.as_ref().expect("scan").tags.clone();
        tags.sort();
        assert_eq!(tags, [format!("{i}.0.0"), format!("{i}.1.0")]);
    }
    assert_eq!(
        results[5].as_ref().expect_err("missing").code(),
        "not_found"
    );
}

#[test]
fn bearer_token_challenge_is_followed() {
    // The registry answers 401 with a Bearer challenge; the token service hands out a token
    // for the basic credentials; the listing is retried with it.
    let token_host = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let realm = std::sync::Arc::clone(&token_host);
    let server = FaultServer::start(50, move |path, _| {
        if path.starts_with("/token") {
            return Reply::json(200, r#"{"token": "t0ken", "expires_in": 300}"#);
        }
        let host = realm.lock().expect("lock").clone();
        if path == "/v2/" || !path.contains("tags") {
            return Reply::json(401, "{}").header(
                "WWW-Authenticate",
                &format!("Bearer realm=\"http://{host}/token\",service=\"test\""),
            );
        }
        Reply::json(200, &tags_json(&["1.0.0", "1.1.0"]))
    });
    *token_host.lock().expect("lock") = server.host.clone();
    let rt = runtime();
    let source = insecure(Credentials::Basic {
        username: "robot".into(),
        password: Secret::new("pw"),
    });
    let tags = rt
        .block_on(source.list_tags(&app(&server)))
        .expect("token flow");
    assert_eq!(tags, ["1.0.0", "1.1.0"]);
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.contains("/token")),
        "{requests:?}"
    );
}

fn tag_requests(server: &FaultServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.contains("/tags/list"))
        .count()
}

#[test]
fn retry_after_beyond_the_budget_gives_up_at_once() {
    // The registry asks for an hour; the budget is 10 s: no hammering, one request, a
    // typed error naming the registry.
    let server = scripted_registry(50, |_, _| {
        Reply::json(429, "").header("Retry-After", "3600")
    });
    let err = list_anonymously(&server).expect_err("rate limited");
    assert_eq!(err.code(), "rate_limited", "{err}");
    assert!(err.to_string().contains(&server.host), "{err}");
    assert!(err.to_string().contains("1 times"), "{err}");
    assert_eq!(tag_requests(&server), 1);
}

#[test]
fn retry_after_is_waited_then_the_listing_succeeds() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let server = scripted_registry(50, move |_, _| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::json(429, "").header("Retry-After", "1")
        } else {
            Reply::json(200, &tags_json(&["1.0.0"]))
        }
    });
    let tags = list_anonymously(&server).expect("retried after Retry-After");
    assert_eq!(tags, ["1.0.0"]);
    assert_eq!(tag_requests(&server), 2);
}

/// A server that pages `all` by `cap` per page whatever `n` asks, continuing after `last`;
/// with `link`, it sends `Link: <...>; rel="next"` as Docker Hub and GHCR do.
fn paging_server(all: Vec<String>, cap: usize, link: bool) -> FaultServer {
    scripted_registry(200, move |path, _| {
        let last = path
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("last="))
            .map(str::to_string);
        let start = last.map_or(0, |l| {
            all.iter()
                .position(|t| *t == l)
                .map_or(all.len(), |p| p + 1)
        });
        let page: Vec<&str> = all[start..].iter().take(cap).map(String::as_str).collect();
        let mut reply = Reply::json(200, &tags_json(&page));
        if link && start + page.len() < all.len() {
            let next = format!(
                "</v2/team/app/tags/list?n={cap}&last={}>; rel=\"next\"",
                page[page.len() - 1]
            );
            reply = reply.header("Link", &next);
        }
        reply
    })
}

#[test]
fn follows_link_when_the_registry_caps_the_page_below_n() {
    // We ask for 1000 per page; the registry serves 100 (as many do): only the Link header
    // says there is more.
    let all: Vec<String> = (0..250).map(|i| format!("v{i:04}")).collect();
    let server = paging_server(all.clone(), 100, true);
    let tags = list_anonymously(&server).expect("pages");
    assert_eq!(tags, all);
    assert_eq!(tag_requests(&server), 3);
}

#[test]
fn full_pages_without_link_continue_after_the_last_tag() {
    let all: Vec<String> = (0..250).map(|i| format!("v{i:04}")).collect();
    let server = paging_server(all.clone(), 100, false);
    let source = OciTagSource::new(RegistryOptions {
        insecure: true,
        page_size: 100,
        retry: fast_retries(),
        ..RegistryOptions::default()
    })
    .expect("source");
    let rt = runtime();
    let tags = rt.block_on(source.list_tags(&app(&server))).expect("pages");
    assert_eq!(tags, all);
    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.contains("last=v0199")),
        "{requests:?}"
    );
}

#[test]
fn an_expired_token_is_renewed_once() {
    // Tags requests: 1st OK; 2nd refused (the cached token expired), 3rd OK with a new
    // token; from the 4th on everything is refused.
    let tag_calls = std::sync::atomic::AtomicUsize::new(0);
    let token_host = Arc::new(std::sync::Mutex::new(String::new()));
    let realm = Arc::clone(&token_host);
    let server = FaultServer::start(50, move |path, _| {
        let host = realm.lock().expect("lock").clone();
        let challenge = Reply::json(401, "{}").header(
            "WWW-Authenticate",
            &format!("Bearer realm=\"http://{host}/token\",service=\"test\""),
        );
        if path.starts_with("/token") {
            return Reply::json(200, r#"{"token": "t0ken"}"#);
        }
        if !path.contains("/tags/list") {
            return challenge;
        }
        match tag_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 | 2 => Reply::json(200, &tags_json(&["1.0.0"])),
            _ => challenge,
        }
    });
    *token_host.lock().expect("lock") = server.host.clone();
    let rt = runtime();
    let source = insecure(Credentials::Anonymous);
    let image = format!("{}/team/app", server.host);
    let tokens = |s: &FaultServer| s.requests().iter().filter(|r| r.contains("/token")).count();
    assert_eq!(
        rt.block_on(source.list_tags(&image)).expect("first"),
        ["1.0.0"]
    );
    assert_eq!(tokens(&server), 1);
    assert_eq!(
        rt.block_on(source.list_tags(&image)).expect("renewed"),
        ["1.0.0"]
    );
    assert_eq!(tokens(&server), 2);
    assert_eq!(tag_requests(&server), 3);
    let err = rt.block_on(source.list_tags(&image)).expect_err("refused");
    assert_eq!(err.code(), "auth_failed", "{err}");
    // One renewal, not a loop.
    assert_eq!(tag_requests(&server), 5);
    assert_eq!(tokens(&server), 3);
}

#[test]
fn bad_ca_bundle_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").expect("write");
    let err = OciTagSource::new(RegistryOptions {
        ca_bundle: Some(ca.clone()),
        ..RegistryOptions::default()
    })
    .expect_err("bad bundle");
    assert_eq!(err.code(), "config");
    assert!(err.to_string().contains(&ca.display().to_string()), "{err}");
}

#[test]
fn digest_of_a_multi_arch_image_is_the_index_digest() {
    if tagsmith_testkit::tools::missing(&["docker-registry"]) {
        return;
    }
    let registry = LocalRegistry::start();
    let (index_digest, platform_digest) = registry.seed_index("team/multi", "2.0.0");
    assert_ne!(index_digest, platform_digest);
    let rt = runtime();
    let source = insecure(Credentials::Anonymous);
    let image = format!("{}/team/multi", registry.host);
    let got = rt
        .block_on(source.resolve_digest(&image, "2.0.0"))
        .expect("digest");
    assert_eq!(got, index_digest);
    let err = rt
        .block_on(source.resolve_digest(&image, "9.9.9"))
        .expect_err("no such tag");
    assert_eq!(err.code(), "not_found", "{err}");
}

#[test]
fn credentials_are_not_sent_to_another_host_named_by_link() {
    let other = FaultServer::start(50, |_, _| Reply::json(200, &tags_json(&["2.0.0"])));
    let other_host = other.host.clone();
    let registry = scripted_registry(50, move |_, _| {
        Reply::json(200, &tags_json(&["1.0.0"])).header(
            "Link",
            &format!("<http://{other_host}/v2/team/app/tags/list?last=1.0.0>; rel=\"next\""),
        )
    });
    let rt = runtime();
    let source = insecure(Credentials::Bearer(Secret::new("tok-xyz")));
    let tags = rt
        .block_on(source.list_tags(&format!("{}/team/app", registry.host)))
        .expect("pages on two hosts");
    assert_eq!(tags, ["1.0.0", "2.0.0"]);
    let own = registry.full_requests();
    let page = own
        .iter()
        .find(|r| r.line.contains("/tags/list"))
        .expect("a tags request");
    assert_eq!(page.header("authorization"), Some("Bearer tok-xyz"));
    let foreign = other.full_requests();
    assert_eq!(foreign.len(), 1, "{foreign:?}");
    assert_eq!(foreign[0].header("authorization"), None, "{foreign:?}");
}

// ---- Hostile registries: every test below failed (or hung, or panicked) before the
// ---- deadline, the body cap, the page and tag limits and the clipping existed.

fn source_with(options: RegistryOptions) -> OciTagSource {
    OciTagSource::new(RegistryOptions {
        insecure: true,
        retry: fast_retries(),
        timeout: Duration::from_secs(2),
        ..options
    })
    .expect("source")
}

/// Tags pages whose body arrives one byte every 200 ms: each read gets a byte, so the
/// per-request read timeout (2 s) never fires; 60 tags take minutes.
fn trickling_server() -> FaultServer {
    scripted_registry(20, |_, _| {
        let tags: Vec<String> = (0..60).map(|i| format!("1.0.{i}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Reply::json(200, &tags_json(&tags)).trickled(Duration::from_millis(200))
    })
}

#[test]
fn a_trickling_registry_ends_at_the_scan_timeout() {
    let server = trickling_server();
    let image = format!("{}/team/app", server.host);
    let source = source_with(RegistryOptions {
        scan_timeout: Duration::from_secs(2),
        ..RegistryOptions::default()
    });
    let err = runtime()
        .block_on(scan(&source, &image, &Exclusions::flux_default()))
        .expect_err("deadline");
    assert_eq!(err.code(), "scan_timeout", "{err}");
    let line = err.to_string();
    assert!(line.contains(&image), "{line}");
    assert!(
        line.contains(&format!("registry {}", server.host)),
        "{line}"
    );
    assert!(line.contains("scan timeout of 2000 ms"), "{line}");
}

#[test]
fn a_trickling_registry_does_not_hold_back_a_fast_one_in_scan_many() {
    /// Records the order in which listings finish.
    struct Recorded {
        inner: OciTagSource,
        name: &'static str,
        finished: Arc<std::sync::Mutex<Vec<&'static str>>>,
    }
    #[async_trait::async_trait]
    impl TagSource for Recorded {
        async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
            let result = self.inner.list_tags(image).await;
            self.finished.lock().expect("lock").push(self.name);
            result
        }
        async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError> {
            self.inner.resolve_digest(image, tag).await
        }
    }
    let slow = trickling_server();
    let fast = paging_server(vec!["2.0.0".into(), "2.1.0".into()], 100, true);
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = |name| -> Arc<dyn TagSource> {
        Arc::new(Recorded {
            inner: source_with(RegistryOptions {
                scan_timeout: Duration::from_secs(3),
                ..RegistryOptions::default()
            }),
            name,
            finished: Arc::clone(&finished),
        })
    };
    // The slow one first: with two in flight it must not delay the fast one.
    let requests = vec![
        ScanRequest {
            image: format!("{}/team/app", slow.host),
            source: recorded("slow"),
            exclusions: Exclusions::flux_default(),
        },
        ScanRequest {
            image: format!("{}/team/app", fast.host),
            source: recorded("fast"),
            exclusions: Exclusions::flux_default(),
        },
    ];
    let rt = two_worker_runtime();
    let results = rt.block_on(scan_many(requests, 2));
    let err = results[0].as_ref().expect_err("slow one hits its deadline");
    assert_eq!(err.code(), "scan_timeout", "{err}");
    assert!(err.to_string().contains(&slow.host), "{err}");
    assert_eq!(
        results[1].as_ref().expect("fast one").tags,
        ["2.1.0", "2.0.0"]
    );
    assert_eq!(*finished.lock().expect("lock"), ["fast", "slow"]);
}

#[test]
fn a_tags_page_claiming_three_gigabytes_is_refused_before_reading() {
    let server = scripted_registry(20, |_, _| {
        Reply::json(200, &tags_json(&["1.0.0"])).padded(3 << 30)
    });
    let err = list_anonymously(&server).expect_err("too large");
    assert_eq!(err.code(), "body_too_large", "{err}");
    let line = err.to_string();
    assert!(line.contains(&server.host), "{line}");
    assert!(line.contains("tags page"), "{line}");
    assert!(
        line.contains(&format!("limit of {DEFAULT_MAX_BODY_BYTES} bytes")),
        "{line}"
    );
    assert_eq!(tag_requests(&server), 1, "not retried");
}

#[test]
fn a_tags_page_without_length_is_cut_off_at_the_limit_while_streaming() {
    // 3 GB with no Content-Length: only counting while reading can stop it.
    let server = scripted_registry(20, |_, _| {
        Reply::json(200, &tags_json(&["1.0.0"]))
            .padded(3 << 30)
            .without_length()
    });
    let source = source_with(RegistryOptions {
        max_body_bytes: 1 << 20,
        ..RegistryOptions::default()
    });
    let err = runtime()
        .block_on(source.list_tags(&app(&server)))
        .expect_err("too large");
    assert_eq!(err.code(), "body_too_large", "{err}");
    assert!(err.to_string().contains("limit of 1048576 bytes"), "{err}");
}

/// A registry whose `/v2/` sends a bearer challenge for `token_path` on itself.
fn challenging_server(
    token: impl Fn() -> Reply + Send + Sync + 'static,
    www_authenticate_extra: &'static str,
) -> FaultServer {
    let token_host = Arc::new(std::sync::Mutex::new(String::new()));
    let realm = Arc::clone(&token_host);
    let server = FaultServer::start(20, move |path, _| {
        if path.starts_with("/token") {
            return token();
        }
        let host = realm.lock().expect("lock").clone();
        if path == "/v2/" {
            return Reply::json(401, "{}").header(
                "WWW-Authenticate",
                &format!(
                    "Bearer realm=\"http://{host}/token\",service=\"test\"{www_authenticate_extra}"
                ),
            );
        }
        Reply::json(200, &tags_json(&["1.0.0"]))
    });
    *token_host.lock().expect("lock") = server.host.clone();
    server
}

#[test]
fn a_huge_token_response_is_cut_off_at_the_limit() {
    let server = challenging_server(
        || {
            Reply::json(200, r#"{"token": "t0ken"}"#)
                .padded(3 << 30)
                .without_length()
        },
        "",
    );
    let source = source_with(RegistryOptions {
        max_body_bytes: 1 << 20,
        ..RegistryOptions::default()
    });
    let err = runtime()
        .block_on(source.list_tags(&app(&server)))
        .expect_err("too large");
    assert_eq!(err.code(), "body_too_large", "{err}");
    assert!(err.to_string().contains("token response"), "{err}");
}

#[test]
fn a_huge_www_authenticate_header_is_refused() {
    let padding: &'static str =
        Box::leak(format!(",x=\"{}\"", "y".repeat(100_000)).into_boxed_str());
    let server = challenging_server(|| Reply::json(200, r#"{"token": "t0ken"}"#), padding);
    let err = list_anonymously(&server).expect_err("refused");
    assert_eq!(err.code(), "http", "{err}");
    assert!(
        err.to_string()
            .contains("WWW-Authenticate header is longer"),
        "{err}"
    );
    assert!(err.to_string().len() < 1024);
}

#[test]
fn a_huge_manifest_is_cut_off_at_the_limit() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&hits);
    let server = scripted_registry(30, move |_, _| {
        // First request per lookup is the HEAD (no digest header), then the GET.
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            Reply::json(200, "")
        } else {
            Reply::json(200, "{}").padded(3 << 30).without_length()
        }
    });
    let source = source_with(RegistryOptions {
        max_body_bytes: 1 << 20,
        ..RegistryOptions::default()
    });
    let err = runtime()
        .block_on(source.resolve_digest(&app(&server), "1.0.0"))
        .expect_err("too large");
    assert_eq!(err.code(), "body_too_large", "{err}");
    assert!(err.to_string().contains("manifest"), "{err}");
}

#[test]
fn a_manifest_without_a_digest_header_is_hashed() {
    let manifest = r#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}"#;
    let server = scripted_registry(30, move |_, index| {
        // Request 1 is the HEAD, 2 the GET.
        if index == 1 {
            Reply::json(200, "")
        } else {
            Reply::json(200, manifest)
        }
    });
    let got = runtime()
        .block_on(insecure(Credentials::Anonymous).resolve_digest(&app(&server), "1.0.0"))
        .expect("digest");
    use sha2::Digest as _;
    assert_eq!(
        got,
        format!("sha256:{:x}", sha2::Sha256::digest(manifest.as_bytes()))
    );
    let lines = server.requests();
    assert!(
        lines[1].starts_with("HEAD /v2/team/app/manifests/1.0.0"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("GET /v2/team/app/manifests/1.0.0"),
        "{lines:?}"
    );
}

#[test]
fn an_invalid_docker_content_digest_is_refused() {
    let server = scripted_registry(30, |_, _| {
        Reply::json(200, "").header("Docker-Content-Digest", "sha256:../../etc/passwd")
    });
    let err = runtime()
        .block_on(insecure(Credentials::Anonymous).resolve_digest(&app(&server), "1.0.0"))
        .expect_err("invalid digest");
    assert_eq!(err.code(), "http", "{err}");
    assert!(
        err.to_string().contains("invalid Docker-Content-Digest"),
        "{err}"
    );
}

#[test]
fn a_megabyte_manifest_error_body_is_clipped_in_the_message() {
    let server = scripted_registry(30, |_, index| {
        if index % 2 == 1 {
            Reply::json(200, "") // HEAD without a digest: the GET follows
        } else {
            Reply::json(500, &"e".repeat(1 << 20))
        }
    });
    let err = runtime()
        .block_on(insecure(Credentials::Anonymous).resolve_digest(&app(&server), "1.0.0"))
        .expect_err("500");
    assert_eq!(err.code(), "http", "{err}");
    let line = err.to_string();
    assert!(line.len() < 1024, "{} bytes", line.len());
    assert!(line.contains("HTTP 500") && line.contains('…'), "{line}");
}

#[test]
fn a_megabyte_tag_is_refused_with_a_short_error_and_no_request() {
    let server = FaultServer::start(5, |_, _| Reply::json(200, "{}"));
    let tag = "1".repeat(1 << 20);
    let err = runtime()
        .block_on(insecure(Credentials::Anonymous).resolve_digest(&app(&server), &tag))
        .expect_err("invalid tag");
    assert_eq!(err.code(), "invalid_reference", "{err}");
    assert!(
        err.to_string().len() < 1024,
        "{} bytes",
        err.to_string().len()
    );
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A registry whose every tags page links to a next one, forever: the page of request
/// `index` holds `tags(index)`, and its `Link` asks for `n` more after the last of them.
fn endless_registry(
    n: usize,
    tags: impl Fn(usize) -> Vec<String> + Send + Sync + 'static,
) -> FaultServer {
    scripted_registry(100, move |_, index| {
        let tags = tags(index);
        let last = tags.last().map_or("", String::as_str);
        let next = format!("</v2/team/app/tags/list?n={n}&last={last}>; rel=\"next\"");
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        Reply::json(200, &tags_json(&tags)).header("Link", &next)
    })
}

#[test]
fn endless_link_paging_stops_at_the_page_limit() {
    // Every page holds one new tag and links to the next, forever.
    let server = endless_registry(1000, |index| vec![format!("t{index:06}")]);
    let source = source_with(RegistryOptions {
        max_pages: 5,
        ..RegistryOptions::default()
    });
    let err = runtime()
        .block_on(source.list_tags(&app(&server)))
        .expect_err("page limit");
    assert_eq!(err.code(), "too_many_pages", "{err}");
    assert!(err.to_string().contains("after 5 pages"), "{err}");
    assert!(err.to_string().contains(&server.host), "{err}");
    assert_eq!(tag_requests(&server), 5);
}

#[test]
fn endless_link_paging_stops_at_the_tag_limit() {
    let server = endless_registry(100, |index| {
        (0..100).map(|i| format!("t{index:04}-{i:03}")).collect()
    });
    let source = source_with(RegistryOptions {
        max_tags: 250,
        ..RegistryOptions::default()
    });
    let err = runtime()
        .block_on(source.list_tags(&app(&server)))
        .expect_err("tag limit");
    assert_eq!(err.code(), "too_many_tags", "{err}");
    assert!(err.to_string().contains("more than 250 tags"), "{err}");
    assert_eq!(tag_requests(&server), 3);
}

#[test]
fn a_listing_of_exactly_the_limits_succeeds() {
    let all: Vec<String> = (0..250).map(|i| format!("v{i:04}")).collect();
    let server = paging_server(all.clone(), 50, true);
    let source = source_with(RegistryOptions {
        max_pages: 5,
        max_tags: 250,
        ..RegistryOptions::default()
    });
    let tags = runtime()
        .block_on(source.list_tags(&app(&server)))
        .expect("within the limits");
    assert_eq!(tags, all);
}

#[test]
fn a_retry_after_of_u64_max_gives_up_without_panicking() {
    let server = scripted_registry(20, |_, _| {
        Reply::json(429, "").header("Retry-After", "18446744073709551615")
    });
    let err = list_anonymously(&server).expect_err("rate limited");
    assert_eq!(err.code(), "rate_limited", "{err}");
    assert_eq!(tag_requests(&server), 1);
}

#[test]
fn tags_that_are_not_oci_tags_are_dropped() {
    let server = scripted_registry(20, |_, _| {
        let long = "a".repeat(129);
        Reply::json(
            200,
            &tags_json(&[
                "1.0.0",
                "1.1.0\nimage: evil",
                "../../x",
                "a?b",
                &long,
                "",
                "1.2.0",
            ]),
        )
    });
    let tags = list_anonymously(&server).expect("tags");
    assert_eq!(tags, ["1.0.0", "1.2.0"]);
}
