//! The registry [`TagSource`] on `oci-client`: paging, auth, retries.

use crate::docker_config::{credentials_for, credentials_from_json};
use crate::secret::Credentials;
use crate::secret::Secret;
use crate::{ScanError, TagSource};
use async_trait::async_trait;
use base64::Engine;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bounded exponential backoff with jitter for 429 and 5xx answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per page, the first included.
    pub max_attempts: u32,
    /// The first wait.
    pub base_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
    /// The most time one page may take, waits included.
    pub max_total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_total: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: base * 2^attempt, capped, with up to 50%
    /// random jitter so that many scanners do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = exp.mul_f64(f64::from(nanos % 1000) / 2000.0);
        exp.saturating_sub(jitter)
    }

    /// The wait before attempt `attempt + 1` when the registry sent `Retry-After`: never
    /// less than the registry asked for, never less than the backoff.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.delay(attempt);
        retry_after.map_or(backoff, |asked| asked.max(backoff))
    }
}

/// `Retry-After` as delta-seconds (what registries send). An HTTP-date is not parsed: the
/// backoff applies then.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The `rel="next"` target of a `Link` header (RFC 8288), e.g.
/// `</v2/app/tags/list?n=100&last=v9>; rel="next"`.
pub(crate) fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.to_string())
    })
}

/// How to reach one registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP (Flux's `spec.insecure`); only when asked.
    pub insecure: bool,
    /// Extra PEM CA certificates to trust, from a file.
    pub ca_bundle: Option<PathBuf>,
    /// Extra PEM CA certificates to trust, in memory (Flux's `certSecretRef` `ca.crt`),
    /// with where they came from for errors.
    pub ca_pem: Option<(String, Vec<u8>)>,
    /// Connect and read timeout per request.
    pub timeout: Duration,
    /// Credentials.
    pub credentials: Credentials,
    /// Retries for 429 and 5xx.
    pub retry: RetryPolicy,
    /// Tags per page (`n=`); registries may return fewer or ignore it.
    pub page_size: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: false,
            ca_bundle: None,
            ca_pem: None,
            timeout: Duration::from_secs(30),
            credentials: Credentials::Anonymous,
            retry: RetryPolicy::default(),
            page_size: 1000,
        }
    }
}

/// Tags from an OCI registry.
///
/// Authentication (including the bearer-token challenge) and digests go through
/// `oci-client`; the tags pages are fetched with the same HTTP stack directly, because the
/// `Link` (next page) and `Retry-After` headers are not exposed by `oci-client` 0.18.
pub struct OciTagSource {
    client: Client,
    http: reqwest::Client,
    options: RegistryOptions,
    /// `Authorization` per `registry/repository`, reused across scans until a 401.
    authorizations: Mutex<HashMap<String, Option<Secret>>>,
}

impl std::fmt::Debug for OciTagSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciTagSource")
            .field("options", &self.options)
            .finish()
    }
}

pub(crate) fn parse_reference(image: &str) -> Result<Reference, ScanError> {
    image
        .parse::<Reference>()
        .map_err(|e| ScanError::InvalidReference {
            image: image.to_string(),
            reason: e.to_string(),
        })
}

impl OciTagSource {
    /// A source with these options (reads the CA bundle now).
    pub fn new(options: RegistryOptions) -> Result<Self, ScanError> {
        let mut extra_root_certificates = Vec::new();
        let mut http = reqwest::Client::builder()
            .read_timeout(options.timeout)
            .connect_timeout(options.timeout)
            .user_agent(concat!("tagsmith/", env!("CARGO_PKG_VERSION")));
        let ca = match (&options.ca_bundle, &options.ca_pem) {
            (Some(path), _) => Some((
                path.display().to_string(),
                std::fs::read(path).map_err(|e| ScanError::Config {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?,
            )),
            (None, Some((source, data))) => Some((source.clone(), data.clone())),
            (None, None) => None,
        };
        if let Some((source, data)) = ca {
            let config_error = |message: String| ScanError::Config {
                path: source.clone(),
                message,
            };
            let certs = reqwest::Certificate::from_pem_bundle(&data)
                .map_err(|e| config_error(format!("not a PEM CA bundle: {e}")))?;
            if certs.is_empty() {
                return Err(config_error("no PEM certificate in the CA bundle".into()));
            }
            http = http.tls_certs_merge(certs);
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: if options.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates,
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout),
            ..ClientConfig::default()
        };
        // `Client::new` would fall back to defaults on a bad config; refuse instead.
        let client = Client::try_from(config).map_err(|e| ScanError::Config {
            path: options
                .ca_bundle
                .as_ref()
                .map_or("<registry options>".into(), |p| p.display().to_string()),
            message: format!("cannot build the registry client: {e}"),
        })?;
        let http = http.build().map_err(|e| ScanError::Config {
            path: "<registry options>".into(),
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(OciTagSource {
            client,
            http,
            options,
            authorizations: Mutex::new(HashMap::new()),
        })
    }

    fn auth_for(&self, reference: &Reference) -> Result<RegistryAuth, ScanError> {
        let credentials = match &self.options.credentials {
            Credentials::DockerConfig(path) => credentials_for(path, reference.resolve_registry())?,
            Credentials::DockerConfigJson { source, json } => {
                credentials_from_json(source, json.expose(), reference.resolve_registry())?
            }
            other => other.clone(),
        };
        Ok(match credentials {
            Credentials::Anonymous
            | Credentials::DockerConfig(_)
            | Credentials::DockerConfigJson { .. } => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username, password.expose().to_string())
            }
            Credentials::Bearer(token) => RegistryAuth::Bearer(token.expose().to_string()),
        })
    }

    /// Runs `call` with retries on 429/5xx/transport errors, mapping the final error.
    async fn with_retries<T, F, Fut>(
        &self,
        reference: &Reference,
        image: &str,
        mut call: F,
    ) -> Result<T, ScanError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut budget = Budget::new(&self.options, reference, image);
        loop {
            let err = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let failure = Failure {
                class: classify(&err),
                retry_after: None,
                message: redact(&err.to_string()),
            };
            budget.after_failure(failure).await?;
        }
    }

    /// The `Authorization` header for the tags pages: a bearer token from the registry's
    /// challenge (through oci-client), basic credentials when the registry asks for
    /// basic, nothing for an open registry.
    async fn authorization(
        &self,
        reference: &Reference,
        image: &str,
        auth: &RegistryAuth,
    ) -> Result<Option<Secret>, ScanError> {
        let token = self
            .with_retries(reference, image, || {
                self.client.auth(reference, auth, RegistryOperation::Pull)
            })
            .await?;
        Ok(match (token, auth) {
            (Some(token), _) => Some(Secret::new(format!("Bearer {token}"))),
            (None, RegistryAuth::Basic(user, password)) => Some(Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ))),
            (None, _) => None,
        })
    }

    /// One tags page, with retries; `Err(None)` means 401 (the caller re-authenticates).
    async fn fetch_page(
        &self,
        url: &str,
        authorization: Option<&Secret>,
        budget: &mut Budget,
    ) -> Result<Page, Option<ScanError>> {
        loop {
            let failure = match self.fetch_page_once(url, authorization).await {
                Ok(page) => return Ok(page),
                Err(f) if matches!(f.class, Class::Unauthorized) => return Err(None),
                Err(f) => f,
            };
            budget.after_failure(failure).await.map_err(Some)?;
        }
    }

    async fn fetch_page_once(
        &self,
        url: &str,
        authorization: Option<&Secret>,
    ) -> Result<Page, Failure> {
        let mut request = self.http.get(url).header("Accept", "application/json");
        if let Some(value) = authorization {
            request = request.header("Authorization", value.expose());
        }
        let response = request.send().await.map_err(Failure::transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let next = response
            .headers()
            .get_all("Link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link);
        let body = response.bytes().await.map_err(Failure::transport)?;
        if status != 200 {
            let class = match status {
                401 => Class::Unauthorized,
                403 => Class::Auth,
                404 => Class::NotFound,
                429 => Class::RateLimited,
                s if s >= 500 => Class::Server(Some(s)),
                s => Class::Other(Some(s)),
            };
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            return Err(Failure {
                class,
                retry_after,
                message: format!("HTTP {status}: {}", text.trim()),
            });
        }
        let list: TagList = serde_json::from_slice(&body).map_err(|e| Failure {
            class: Class::Transport,
            retry_after: None,
            message: format!("the tags list is not valid JSON: {e}"),
        })?;
        Ok(Page {
            tags: list.tags.unwrap_or_default(),
            next,
        })
    }
}

/// One page of `GET /v2/<name>/tags/list`.
#[derive(serde::Deserialize)]
struct TagList {
    /// `null` for a repository without tags on some registries.
    tags: Option<Vec<String>>,
}

struct Page {
    tags: Vec<String>,
    next: Option<String>,
}

struct Failure {
    class: Class,
    retry_after: Option<Duration>,
    message: String,
}

impl Failure {
    fn transport(e: reqwest::Error) -> Self {
        Failure {
            class: if e.is_timeout() {
                Class::Timeout
            } else {
                Class::Transport
            },
            retry_after: None,
            message: redact(&e.to_string()),
        }
    }
}

/// The retry budget of one operation: attempts and total time, per [`RetryPolicy`].
struct Budget {
    policy: RetryPolicy,
    timeout: Duration,
    registry: String,
    image: String,
    start: Instant,
    attempts: u32,
}

impl Budget {
    fn new(options: &RegistryOptions, reference: &Reference, image: &str) -> Self {
        Budget {
            policy: options.retry.clone(),
            timeout: options.timeout,
            registry: reference.resolve_registry().to_string(),
            image: image.to_string(),
            start: Instant::now(),
            attempts: 0,
        }
    }

    /// Counts a failed attempt; waits and returns `Ok` when another attempt is allowed,
    /// else the typed error.
    async fn after_failure(&mut self, failure: Failure) -> Result<(), ScanError> {
        self.attempts += 1;
        let wait = self.policy.wait(self.attempts - 1, failure.retry_after);
        let out_of_budget = self.attempts >= self.policy.max_attempts
            || self.start.elapsed() + wait > self.policy.max_total;
        if failure.class.retryable() && !out_of_budget {
            tracing::warn!(
                registry = %self.registry,
                image = %self.image,
                attempt = self.attempts,
                ?wait,
                "registry answered {}; retrying",
                failure.class.describe()
            );
            tokio::time::sleep(wait).await;
            return Ok(());
        }
        Err(self.give_up(failure))
    }

    fn give_up(&self, failure: Failure) -> ScanError {
        let registry = self.registry.clone();
        let image = self.image.clone();
        let attempts = self.attempts;
        match failure.class {
            Class::RateLimited => ScanError::RateLimited {
                registry,
                image,
                attempts,
                elapsed_ms: self.start.elapsed().as_millis() as u64,
            },
            Class::Auth | Class::Unauthorized => ScanError::AuthFailed { registry, image },
            Class::NotFound => ScanError::NotFound { registry, image },
            Class::Timeout => ScanError::Timeout {
                registry,
                image,
                attempts,
                timeout_ms: self.timeout.as_millis() as u64,
            },
            Class::Server(status) | Class::Other(status) => ScanError::Http {
                registry,
                image,
                status,
                message: format!("{} (after {attempts} attempts)", failure.message),
            },
            Class::Transport => ScanError::Http {
                registry,
                image,
                status: None,
                message: format!("{} (after {attempts} attempts)", failure.message),
            },
        }
    }
}

/// Error messages carry URLs; they carry no credentials (those travel in headers), but a
/// URL with `user:pass@` is cut down anyway.
fn redact(message: &str) -> String {
    match (message.find("://"), message.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://<redacted>@{}", &message[..scheme], &message[at + 1..])
        }
        _ => message.to_string(),
    }
}

enum Class {
    RateLimited,
    /// 401 on a tags page: the token may have expired; re-authenticate once.
    Unauthorized,
    Timeout,
    Auth,
    NotFound,
    Server(Option<u16>),
    Transport,
    Other(Option<u16>),
}

impl Class {
    fn retryable(&self) -> bool {
        matches!(
            self,
            Class::RateLimited | Class::Server(_) | Class::Transport | Class::Timeout
        )
    }

    fn describe(&self) -> String {
        match self {
            Class::RateLimited => "429 Too Many Requests".into(),
            Class::Server(Some(s)) => format!("HTTP {s}"),
            Class::Transport => "a transport error".into(),
            Class::Timeout => "nothing within the timeout".into(),
            _ => "an error".into(),
        }
    }
}

fn classify(err: &OciDistributionError) -> Class {
    match err {
        OciDistributionError::ServerError { code: 429, .. } => Class::RateLimited,
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        }
        | OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Class::Auth,
        OciDistributionError::ServerError { code: 404, .. } => Class::NotFound,
        OciDistributionError::ServerError { code, .. } if *code >= 500 => {
            Class::Server(Some(*code))
        }
        OciDistributionError::ServerError { code, .. } => Class::Other(Some(*code)),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                Class::RateLimited
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                Class::Auth
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::ManifestUnknown
                )
            }) {
                Class::NotFound
            } else {
                Class::Other(None)
            }
        }
        OciDistributionError::RequestError(e) => {
            if e.status().is_some_and(|s| s.as_u16() == 429) {
                Class::RateLimited
            } else if e.is_timeout() {
                Class::Timeout
            } else if e.is_connect() || e.is_request() || e.is_body() || e.is_decode() {
                Class::Transport
            } else {
                Class::Other(e.status().map(|s| s.as_u16()))
            }
        }
        OciDistributionError::JsonError(_) => Class::Transport,
        _ => Class::Other(None),
    }
}

/// Most pages any one listing follows: a guard against a registry that never ends.
const MAX_PAGES: usize = 100_000;

#[async_trait]
impl TagSource for OciTagSource {
    async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
        let reference = parse_reference(image)?;
        let auth = self.auth_for(&reference)?;
        let registry = reference.resolve_registry().to_string();
        let scheme = if self.options.insecure {
            "http"
        } else {
            "https"
        };
        let origin = format!("{scheme}://{registry}");
        let n = self.options.page_size.max(1);
        let mut url = format!("{origin}/v2/{}/tags/list?n={n}", reference.repository());
        let key = format!("{registry}/{}", reference.repository());
        let cached = self
            .authorizations
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        let mut reauthenticated = cached.is_none();
        let mut authorization = match cached {
            Some(a) => a,
            None => self.authorization(&reference, image, &auth).await?,
        };
        let mut tags: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for _ in 0..MAX_PAGES {
            // Each page has its own retry budget (attempts and time), as `RetryPolicy` says.
            let mut budget = Budget::new(&self.options, &reference, image);
            // Credentials go only to the registry itself, never to another host a `Link`
            // header might name.
            let same_origin = url.starts_with(&format!("{origin}/"));
            let page = match self
                .fetch_page(
                    &url,
                    authorization.as_ref().filter(|_| same_origin),
                    &mut budget,
                )
                .await
            {
                Ok(page) => page,
                Err(Some(e)) => return Err(e),
                Err(None) if !reauthenticated => {
                    // A bearer token can expire during a long listing: fetch a new one once.
                    reauthenticated = true;
                    authorization = self.authorization(&reference, image, &auth).await?;
                    continue;
                }
                Err(None) => {
                    return Err(ScanError::AuthFailed {
                        registry,
                        image: image.to_string(),
                    })
                }
            };
            let count = page.tags.len();
            let before = tags.len();
            for tag in page.tags {
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                }
            }
            if tags.len() == before {
                break; // nothing new: the end, or a registry that ignores `last`
            }
            // The next page: the `Link` header (Docker Hub, GHCR, distribution 3); a full page
            // without one is continued after its last tag, for registries that page by `n`
            // but send no `Link`. A short page without `Link` is the end.
            url = match page.next {
                Some(next) if next.starts_with("http://") || next.starts_with("https://") => next,
                Some(next) if next.starts_with('/') => format!("{origin}{next}"),
                Some(next) => format!("{origin}/v2/{}/{next}", reference.repository()),
                None if count == n => format!(
                    "{origin}/v2/{}/tags/list?n={n}&last={}",
                    reference.repository(),
                    tags.last().map(|t| t.as_str()).unwrap_or_default()
                ),
                None => break,
            };
        }
        if let Ok(mut m) = self.authorizations.lock() {
            m.insert(key, authorization);
        }
        Ok(tags)
    }

    async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError> {
        let base = parse_reference(image)?;
        let reference = Reference::with_tag(
            base.registry().to_string(),
            base.repository().to_string(),
            tag.to_string(),
        );
        let auth = self.auth_for(&reference)?;
        self.with_retries(&reference, image, || {
            self.client.fetch_manifest_digest(&reference, &auth)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next_target() {
        assert_eq!(
            next_link(r#"</v2/team/app/tags/list?n=100&last=v9>; rel="next""#).as_deref(),
            Some("/v2/team/app/tags/list?n=100&last=v9")
        );
        assert_eq!(
            next_link(
                r#"<https://r.example/a?x=1>; rel="prev", <https://r.example/b?last=z>; rel=next"#
            )
            .as_deref(),
            Some("https://r.example/b?last=z")
        );
        assert_eq!(next_link(r#"</v2/a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn retry_after_is_a_floor_for_the_wait() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_total: Duration::from_secs(60),
        };
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        for attempt in 0..8 {
            let plain = policy.wait(attempt, None);
            assert!(plain <= policy.max_delay, "{plain:?} above the cap");
            assert!(
                plain >= policy.base_delay / 2,
                "{plain:?} below half the base"
            );
            assert_eq!(
                policy.wait(attempt, Some(Duration::from_secs(3))),
                Duration::from_secs(3)
            );
        }
        // The exponential part doubles until the cap (jitter takes at most half off).
        assert!(policy.delay(1) >= Duration::from_millis(10));
        assert!(policy.delay(2) >= Duration::from_millis(20));
    }

    #[test]
    fn redacts_user_info_in_urls() {
        assert_eq!(
            redact("error sending request for url (https://bob:hunter2@reg.example/v2/)"),
            "error sending request for url (https://<redacted>@reg.example/v2/)"
        );
    }
}
