//! The registry [`TagSource`]: paging, auth, retries, and the bounds a hostile registry
//! cannot push us past (a deadline per operation, capped bodies, pages and tags).

use crate::docker_config::{credentials_for, credentials_from_json};
use crate::error::{clip, clip_to};
use crate::secret::Credentials;
use crate::secret::Secret;
use crate::{ScanError, TagSource};
use async_trait::async_trait;
use base64::Engine;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::Reference;
use sha2::Digest as _;
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
        // At most half of `exp`, so the product cannot overflow.
        let jitter = exp / 2000 * (nanos % 1000);
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

/// The default [`RegistryOptions::scan_timeout`]: 5 minutes.
///
/// Flux has no such constant: `ImageRepository.spec.timeout` defaults to `spec.interval`
/// (and is never less than 1 s), see [`flux_scan_timeout`]. Without an interval (the
/// `tagsmith scan` command) we take 5 minutes, the interval Flux's own examples use.
pub const DEFAULT_SCAN_TIMEOUT: Duration = Duration::from_secs(300);

/// The default [`RegistryOptions::max_body_bytes`]: 16 MiB per response body.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// The default [`RegistryOptions::max_pages`].
pub const DEFAULT_MAX_PAGES: usize = 10_000;

/// The default [`RegistryOptions::max_tags`].
pub const DEFAULT_MAX_TAGS: usize = 1_000_000;

/// The longest per-request [`RegistryOptions::timeout`] accepted: 24 hours. Longer values
/// are refused as a `config` error (the HTTP stack adds the timeout to the current instant
/// and would overflow on absurd values).
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The scan timeout Flux applies to an `ImageRepository`: `spec.timeout` when set, else
/// `spec.interval`, never less than one second.
///
/// Upstream: `GetTimeout` in image-reflector-controller `api/v1/imagerepository_types.go`;
/// the reconciler (`internal/controller/imagerepository_controller.go`) wraps the
/// credentials lookup and the whole scan in `context.WithTimeout(ctx, obj.GetTimeout())`.
///
/// ```
/// use std::time::Duration;
/// use tagsmith_registry_scan::flux_scan_timeout;
/// assert_eq!(flux_scan_timeout(Duration::from_secs(600), None), Duration::from_secs(600));
/// assert_eq!(flux_scan_timeout(Duration::from_secs(600), Some(Duration::from_secs(30))), Duration::from_secs(30));
/// assert_eq!(flux_scan_timeout(Duration::from_millis(10), None), Duration::from_secs(1));
/// ```
pub fn flux_scan_timeout(interval: Duration, timeout: Option<Duration>) -> Duration {
    timeout.unwrap_or(interval).max(Duration::from_secs(1))
}

/// How to reach one registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP (Flux's `spec.insecure`); only when asked.
    pub insecure: bool,
    /// Extra PEM CA certificates to trust (Flux's `certSecretRef`).
    pub ca_bundle: Option<PathBuf>,
    /// Extra PEM CA certificates to trust, in memory (Flux's `certSecretRef` `ca.crt`),
    /// with where they came from for errors.
    pub ca_pem: Option<(String, Vec<u8>)>,
    /// Connect and read timeout per request (each read, not the whole body: see
    /// `scan_timeout`). At most [`MAX_REQUEST_TIMEOUT`].
    pub timeout: Duration,
    /// Credentials.
    pub credentials: Credentials,
    /// Retries for 429 and 5xx.
    pub retry: RetryPolicy,
    /// Tags per page (`n=`); registries may return fewer or ignore it.
    pub page_size: usize,
    /// The deadline of one whole operation: a listing (credentials, token, every page,
    /// retry, wait and slow body) or a digest lookup. Flux's `spec.timeout`, which defaults
    /// to `spec.interval` ([`flux_scan_timeout`]); here [`DEFAULT_SCAN_TIMEOUT`]. Past it
    /// the operation fails with `scan_timeout`.
    pub scan_timeout: Duration,
    /// The most bytes read of any one response body (a tags page, a token response, a
    /// manifest); larger bodies fail with `body_too_large`. [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: u64,
    /// The most tag pages one listing follows; a registry still paging after that fails
    /// with `too_many_pages`. [`DEFAULT_MAX_PAGES`].
    pub max_pages: usize,
    /// The most distinct tags one listing keeps; more fail with `too_many_tags`.
    /// [`DEFAULT_MAX_TAGS`].
    pub max_tags: usize,
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
            scan_timeout: DEFAULT_SCAN_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_pages: DEFAULT_MAX_PAGES,
            max_tags: DEFAULT_MAX_TAGS,
        }
    }
}

impl RegistryOptions {
    /// Refuses values no registry needs and the HTTP stack cannot take.
    fn check(&self) -> Result<(), ScanError> {
        let refuse = |message: String| {
            Err(ScanError::Config {
                path: "<registry options>".into(),
                message,
            })
        };
        if self.timeout.is_zero() || self.timeout > MAX_REQUEST_TIMEOUT {
            return refuse(format!(
                "timeout {:?} is out of range (1 ns to {} s)",
                self.timeout,
                MAX_REQUEST_TIMEOUT.as_secs()
            ));
        }
        if self.scan_timeout.is_zero() {
            return refuse("scan_timeout must be more than zero".into());
        }
        if self.max_body_bytes == 0 || self.max_pages == 0 || self.max_tags == 0 {
            return refuse("max_body_bytes, max_pages and max_tags must be at least 1".into());
        }
        Ok(())
    }
}

/// Tags from an OCI registry.
///
/// Every request goes through one `reqwest` client (TLS, CA bundle, timeouts) so that every
/// body is read through the same size cap: the `/v2/` probe, the bearer-token challenge and
/// token request, the tags pages (with their `Link` and `Retry-After` headers, which
/// `oci-client` 0.18 does not expose) and the manifest digests. `oci-client` parses the
/// references.
pub struct OciTagSource {
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
            image: clip(image).into_owned(),
            reason: clip(&e.to_string()).into_owned(),
        })
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (distribution spec). Anything else
/// cannot be pulled, could smuggle a path or query into a URL, or a line break into the
/// YAML the setter writes.
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A digest as registries report it: `algorithm:hex`, e.g. `sha256:` and 64 hex digits.
fn is_valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == hex_len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The longest `WWW-Authenticate` header parsed; real challenges are a few hundred bytes.
const MAX_CHALLENGE_BYTES: usize = 8 * 1024;

/// How much of an error body goes into an error message (the rest is not read).
const ERROR_BODY_BYTES: u64 = 4 * 1024;

/// One image on one registry, with its names clipped for error messages.
struct Target {
    /// The registry host as the reference resolves it (Docker Hub: `index.docker.io`).
    host: String,
    registry: String,
    image: String,
    repository: String,
    origin: String,
    /// The authorization cache key, `registry/repository`.
    key: String,
}

impl Target {
    fn new(image: &str, insecure: bool) -> Result<Self, ScanError> {
        let reference = parse_reference(image)?;
        let registry = reference.resolve_registry().to_string();
        let scheme = if insecure { "http" } else { "https" };
        Ok(Target {
            origin: format!("{scheme}://{registry}"),
            key: format!("{registry}/{}", reference.repository()),
            repository: reference.repository().to_string(),
            registry: clip(&registry).into_owned(),
            host: registry,
            image: clip(image).into_owned(),
        })
    }
}

/// A bearer or basic challenge from `WWW-Authenticate`.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
    Other,
}

/// Parses `Bearer realm="https://auth.example/token",service="reg.example",scope="..."`.
fn parse_challenge(value: &str) -> Challenge {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Challenge::Other;
    }
    let mut params: HashMap<String, String> = HashMap::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            // A quoted string; `\x` escapes x.
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.entry(name).or_insert(value);
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    match params.remove("realm") {
        Some(realm) => Challenge::Bearer {
            realm,
            service: params.remove("service"),
        },
        None => Challenge::Other,
    }
}

/// A body read to at most `limit` bytes.
enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads `response`'s body in chunks, stopping as soon as it passes `limit` bytes (a
/// `Content-Length` above the limit stops it before reading anything).
async fn read_capped(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, ReadError> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        let total = (body.len() as u64).saturating_add(chunk.len() as u64);
        if total > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of an error body, for the message, on one line; the rest is never read.
async fn error_text(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while (body.len() as u64) < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_BYTES as usize);
    let text: String = String::from_utf8_lossy(&body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip_to(text.trim(), 200).into_owned()
}

impl OciTagSource {
    /// A source with these options (checks them and reads the CA bundle now).
    pub fn new(options: RegistryOptions) -> Result<Self, ScanError> {
        options.check()?;
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
        }
        let http = http.build().map_err(|e| ScanError::Config {
            path: options
                .ca_bundle
                .as_ref()
                .map_or("<registry options>".into(), |p| p.display().to_string()),
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(OciTagSource {
            http,
            options,
            authorizations: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `operation` within [`RegistryOptions::scan_timeout`].
    async fn within_deadline<T>(
        &self,
        target: &Target,
        operation: impl std::future::Future<Output = Result<T, ScanError>>,
    ) -> Result<T, ScanError> {
        tokio::time::timeout(self.options.scan_timeout, operation)
            .await
            .unwrap_or_else(|_| {
                Err(ScanError::ScanTimeout {
                    registry: target.registry.clone(),
                    image: target.image.clone(),
                    timeout_ms: millis(self.options.scan_timeout),
                })
            })
    }

    /// The credentials for `target`; a Docker config (and the credential helper it may
    /// run) is read on the blocking pool so that the deadline can still end the scan.
    async fn credentials(&self, target: &Target) -> Result<Credentials, ScanError> {
        // A Docker config may name a credential helper, a process that can take its time:
        // read it on the blocking pool, so the scan's deadline can still end the scan.
        let registry = target.host.clone();
        let (shown, lookup): (
            String,
            Box<dyn FnOnce() -> Result<Credentials, ScanError> + Send>,
        ) = match &self.options.credentials {
            Credentials::DockerConfig(path) => {
                let path = path.clone();
                (
                    path.display().to_string(),
                    Box::new(move || credentials_for(&path, &registry)),
                )
            }
            Credentials::DockerConfigJson { source, json } => {
                let (source, json) = (source.clone(), json.clone());
                (
                    source.clone(),
                    Box::new(move || credentials_from_json(&source, json.expose(), &registry)),
                )
            }
            other => return Ok(other.clone()),
        };
        tokio::task::spawn_blocking(lookup)
            .await
            .unwrap_or_else(|e| {
                Err(ScanError::Config {
                    path: shown,
                    message: format!("reading the credentials failed: {e}"),
                })
            })
    }

    /// The cached authorization of `target`, or a fresh one; `true` when fresh.
    async fn cached_or_new_authorization(
        &self,
        target: &Target,
        credentials: &Credentials,
    ) -> Result<(Option<Secret>, bool), ScanError> {
        let cached = self
            .authorizations
            .lock()
            .ok()
            .and_then(|m| m.get(&target.key).cloned());
        match cached {
            Some(a) => Ok((a, false)),
            None => Ok((self.authorization(target, credentials).await?, true)),
        }
    }

    fn remember(&self, target: &Target, authorization: Option<Secret>) {
        if let Ok(mut m) = self.authorizations.lock() {
            m.insert(target.key.clone(), authorization);
        }
    }

    /// The `Authorization` header for `target`: a ready bearer token as given; else ask
    /// `/v2/` and follow its challenge: a bearer token from the token service (with basic
    /// credentials when we have them), basic credentials when the registry asks for basic,
    /// nothing for an open registry.
    async fn authorization(
        &self,
        target: &Target,
        credentials: &Credentials,
    ) -> Result<Option<Secret>, ScanError> {
        let basic = match credentials {
            Credentials::Bearer(token) => {
                return Ok(Some(Secret::new(format!("Bearer {}", token.expose()))))
            }
            Credentials::Basic { username, password } => Some(Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{}", password.expose()))
            ))),
            Credentials::Anonymous
            | Credentials::DockerConfig(_)
            | Credentials::DockerConfigJson { .. } => None,
        };
        let mut budget = Budget::new(&self.options, target);
        let challenge = loop {
            match self.probe_once(target).await {
                Ok(challenge) => break challenge,
                Err(failure) => budget.after_failure(failure).await?,
            }
        };
        let (realm, service) = match challenge {
            None => return Ok(None),
            Some(Challenge::Bearer { realm, service }) => (realm, service),
            // Basic asked for, or a scheme we do not speak: basic when we have it.
            Some(Challenge::Basic | Challenge::Other) => return Ok(basic),
        };
        let mut url = reqwest::Url::parse(&realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ScanError::Http {
                registry: target.registry.clone(),
                image: target.image.clone(),
                status: None,
                message: format!(
                    "the bearer challenge names a realm that is not an http(s) URL: {:?}",
                    clip(&realm)
                ),
            })?;
        url.query_pairs_mut()
            .append_pair("scope", &format!("repository:{}:pull", target.repository));
        if let Some(service) = &service {
            url.query_pairs_mut().append_pair("service", service);
        }
        loop {
            match self.token_once(url.as_str(), basic.as_ref()).await {
                Ok(token) => return Ok(Some(Secret::new(format!("Bearer {}", token.expose())))),
                Err(failure) => budget.after_failure(failure).await?,
            }
        }
    }

    /// `GET /v2/`: the challenge, if the registry sends one.
    async fn probe_once(&self, target: &Target) -> Result<Option<Challenge>, Failure> {
        let response = self
            .http
            .get(format!("{}/v2/", target.origin))
            .send()
            .await
            .map_err(Failure::transport)?;
        let status = response.status().as_u16();
        if let Some(value) = response.headers().get("WWW-Authenticate") {
            if value.len() > MAX_CHALLENGE_BYTES {
                return Err(Failure::fatal(format!(
                    "the WWW-Authenticate header is longer than {MAX_CHALLENGE_BYTES} bytes"
                )));
            }
            let challenge = value.to_str().map_or(Challenge::Other, parse_challenge);
            return Ok(Some(challenge));
        }
        match status {
            429 | 500..=599 => Err(Failure::status(status, None, error_text(response).await)),
            // An open registry (200), or one whose `/v2/` is odd: the tags request decides.
            _ => Ok(None),
        }
    }

    /// One token request; the token from `{"token": ...}` or `{"access_token": ...}`.
    async fn token_once(&self, url: &str, basic: Option<&Secret>) -> Result<Secret, Failure> {
        let mut request = self.http.get(url).header("Accept", "application/json");
        if let Some(value) = basic {
            request = request.header("Authorization", value.expose());
        }
        let response = request.send().await.map_err(Failure::transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = retry_after(&response);
            return Err(Failure::status(
                status,
                retry_after,
                error_text(response).await,
            ));
        }
        let body = read_capped(response, self.options.max_body_bytes)
            .await
            .map_err(|e| Failure::read(e, "token response", self.options.max_body_bytes))?;
        // Parsed as a plain value so that no error message can quote the token.
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| Failure::fatal("the token response is not JSON".into()))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| {
                value
                    .get(k)
                    .and_then(|t| t.as_str())
                    .filter(|t| !t.is_empty())
            })
            .map(Secret::new)
            .ok_or_else(|| Failure::fatal("the token response holds no token".into()))
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
        if status != 200 {
            let retry_after = retry_after(&response);
            return Err(Failure::status(
                status,
                retry_after,
                error_text(response).await,
            ));
        }
        let next = response
            .headers()
            .get_all("Link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(next_link);
        let body = read_capped(response, self.options.max_body_bytes)
            .await
            .map_err(|e| Failure::read(e, "tags page", self.options.max_body_bytes))?;
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

    async fn list_tags_within_deadline(&self, target: &Target) -> Result<Vec<String>, ScanError> {
        let credentials = self.credentials(target).await?;
        let n = self.options.page_size.max(1);
        let origin = &target.origin;
        let repository = &target.repository;
        let mut url = format!("{origin}/v2/{repository}/tags/list?n={n}");
        let (mut authorization, mut reauthenticated) = self
            .cached_or_new_authorization(target, &credentials)
            .await?;
        let mut tags: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut pages = 0usize;
        let mut invalid = 0usize;
        loop {
            // Each page has its own retry budget (attempts and time), as `RetryPolicy` says.
            let mut budget = Budget::new(&self.options, target);
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
                    authorization = self.authorization(target, &credentials).await?;
                    continue;
                }
                Err(None) => {
                    return Err(ScanError::AuthFailed {
                        registry: target.registry.clone(),
                        image: target.image.clone(),
                    })
                }
            };
            pages += 1;
            let count = page.tags.len();
            let before = tags.len();
            for tag in page.tags {
                if !is_valid_tag(&tag) {
                    if invalid == 0 {
                        tracing::warn!(
                            registry = %target.registry,
                            image = %target.image,
                            tag = ?clip_to(&tag, 64),
                            "the registry listed a tag that is not a valid OCI tag; dropped"
                        );
                    }
                    invalid += 1;
                    continue;
                }
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                    if tags.len() > self.options.max_tags {
                        return Err(ScanError::TooManyTags {
                            registry: target.registry.clone(),
                            image: target.image.clone(),
                            limit: self.options.max_tags,
                        });
                    }
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
                Some(next) => format!("{origin}/v2/{repository}/{next}"),
                None if count == n => format!(
                    "{origin}/v2/{repository}/tags/list?n={n}&last={}",
                    tags.last().map(|t| t.as_str()).unwrap_or_default()
                ),
                None => break,
            };
            if pages >= self.options.max_pages {
                return Err(ScanError::TooManyPages {
                    registry: target.registry.clone(),
                    image: target.image.clone(),
                    limit: self.options.max_pages,
                });
            }
        }
        if invalid > 0 {
            tracing::warn!(registry = %target.registry, image = %target.image, invalid, "dropped tags that are not valid OCI tags");
        }
        self.remember(target, authorization);
        Ok(tags)
    }

    async fn resolve_digest_within_deadline(
        &self,
        target: &Target,
        tag: &str,
    ) -> Result<String, ScanError> {
        let credentials = self.credentials(target).await?;
        let (mut authorization, mut reauthenticated) = self
            .cached_or_new_authorization(target, &credentials)
            .await?;
        let url = format!("{}/v2/{}/manifests/{tag}", target.origin, target.repository);
        loop {
            let mut budget = Budget::new(&self.options, target);
            let attempt = loop {
                match self.digest_once(&url, authorization.as_ref()).await {
                    Ok(digest) => break Ok(digest),
                    Err(f) if matches!(f.class, Class::Unauthorized) => break Err(f),
                    Err(f) => budget.after_failure(f).await?,
                }
            };
            match attempt {
                Ok(digest) => {
                    self.remember(target, authorization);
                    return Ok(digest);
                }
                Err(_) if !reauthenticated => {
                    reauthenticated = true;
                    authorization = self.authorization(target, &credentials).await?;
                }
                Err(_) => {
                    return Err(ScanError::AuthFailed {
                        registry: target.registry.clone(),
                        image: target.image.clone(),
                    })
                }
            }
        }
    }

    /// `HEAD` the manifest for `Docker-Content-Digest`; without it, `GET` the manifest (at
    /// most `max_body_bytes`) and take the header or the SHA-256 of the body.
    async fn digest_once(
        &self,
        url: &str,
        authorization: Option<&Secret>,
    ) -> Result<String, Failure> {
        let accept = [
            OCI_IMAGE_INDEX_MEDIA_TYPE,
            IMAGE_MANIFEST_LIST_MEDIA_TYPE,
            OCI_IMAGE_MEDIA_TYPE,
            IMAGE_MANIFEST_MEDIA_TYPE,
        ]
        .join(", ");
        let request = |method: reqwest::Method| {
            let mut request = self
                .http
                .request(method, url)
                .header("Accept", accept.as_str());
            if let Some(value) = authorization {
                request = request.header("Authorization", value.expose());
            }
            request
        };
        let header_digest = |response: &reqwest::Response| -> Result<Option<String>, Failure> {
            match response.headers().get("Docker-Content-Digest") {
                None => Ok(None),
                Some(value) => match value.to_str() {
                    Ok(d) if is_valid_digest(d) => Ok(Some(d.to_string())),
                    _ => Err(Failure::fatal(format!(
                        "the registry sent an invalid Docker-Content-Digest {:?}",
                        clip_to(&String::from_utf8_lossy(value.as_bytes()), 80)
                    ))),
                },
            }
        };
        let response = request(reqwest::Method::HEAD)
            .send()
            .await
            .map_err(Failure::transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = retry_after(&response);
            return Err(Failure::status(status, retry_after, String::new()));
        }
        if let Some(digest) = header_digest(&response)? {
            return Ok(digest);
        }
        let response = request(reqwest::Method::GET)
            .send()
            .await
            .map_err(Failure::transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = retry_after(&response);
            return Err(Failure::status(
                status,
                retry_after,
                error_text(response).await,
            ));
        }
        let from_header = header_digest(&response)?;
        let body = read_capped(response, self.options.max_body_bytes)
            .await
            .map_err(|e| Failure::read(e, "manifest", self.options.max_body_bytes))?;
        Ok(from_header.unwrap_or_else(|| format!("sha256:{:x}", sha2::Sha256::digest(&body))))
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
            message: clip(&redact(&e.to_string())).into_owned(),
        }
    }

    /// A non-200 answer; `text` is the start of its body.
    fn status(status: u16, retry_after: Option<Duration>, text: String) -> Self {
        let class = match status {
            401 => Class::Unauthorized,
            403 => Class::Auth,
            404 => Class::NotFound,
            429 => Class::RateLimited,
            s if s >= 500 => Class::Server(Some(s)),
            s => Class::Other(Some(s)),
        };
        Failure {
            class,
            retry_after,
            message: if text.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {text}")
            },
        }
    }

    /// A failure that retrying would not mend.
    fn fatal(message: String) -> Self {
        Failure {
            class: Class::Other(None),
            retry_after: None,
            message,
        }
    }

    fn read(e: ReadError, what: &'static str, limit: u64) -> Self {
        match e {
            ReadError::TooLarge => Failure {
                class: Class::TooLarge { what, limit },
                retry_after: None,
                message: String::new(),
            },
            ReadError::Transport(e) => Failure::transport(e),
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
    fn new(options: &RegistryOptions, target: &Target) -> Self {
        Budget {
            policy: options.retry.clone(),
            timeout: options.timeout,
            registry: target.registry.clone(),
            image: target.image.clone(),
            start: Instant::now(),
            attempts: 0,
        }
    }

    /// Counts a failed attempt; waits and returns `Ok` when another attempt is allowed,
    /// else the typed error.
    async fn after_failure(&mut self, failure: Failure) -> Result<(), ScanError> {
        self.attempts = self.attempts.saturating_add(1);
        let wait = self.policy.wait(self.attempts - 1, failure.retry_after);
        // Saturating: a registry may send `Retry-After: 18446744073709551615`.
        let out_of_budget = self.attempts >= self.policy.max_attempts
            || self.start.elapsed().saturating_add(wait) > self.policy.max_total;
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
                elapsed_ms: millis(self.start.elapsed()),
            },
            Class::Auth | Class::Unauthorized => ScanError::AuthFailed { registry, image },
            Class::NotFound => ScanError::NotFound { registry, image },
            Class::Timeout => ScanError::Timeout {
                registry,
                image,
                attempts,
                timeout_ms: millis(self.timeout),
            },
            Class::TooLarge { what, limit } => ScanError::BodyTooLarge {
                registry,
                image,
                what,
                limit_bytes: limit,
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
    TooLarge {
        what: &'static str,
        limit: u64,
    },
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

#[async_trait]
impl TagSource for OciTagSource {
    async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
        let target = Target::new(image, self.options.insecure)?;
        self.within_deadline(&target, self.list_tags_within_deadline(&target))
            .await
    }

    async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError> {
        if !is_valid_tag(tag) {
            return Err(ScanError::InvalidReference {
                image: format!("{}:{}", clip(image), clip(tag)),
                reason: "not a valid OCI tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})".into(),
            });
        }
        let target = Target::new(image, self.options.insecure)?;
        self.within_deadline(&target, self.resolve_digest_within_deadline(&target, tag))
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
    fn backoff_with_the_largest_durations_does_not_overflow() {
        let policy = RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            max_total: Duration::MAX,
        };
        for attempt in [0, 1, 16, u32::MAX] {
            assert!(policy.delay(attempt) >= Duration::MAX / 2);
            assert!(policy.wait(attempt, Some(Duration::from_secs(u64::MAX))) >= Duration::MAX / 2);
        }
    }

    #[test]
    fn redacts_user_info_in_urls() {
        assert_eq!(
            redact("error sending request for url (https://bob:hunter2@reg.example/v2/)"),
            "error sending request for url (https://<redacted>@reg.example/v2/)"
        );
    }

    #[test]
    fn bearer_challenges_are_parsed_with_quotes_escapes_and_odd_spacing() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="reg.example",scope="repository:a:pull""#
            ),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg.example".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"bearer  service=reg , realm = "http://h/t\"x" "#),
            Challenge::Bearer {
                realm: "http://h/t\"x".into(),
                service: Some("reg".into())
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="registry""#),
            Challenge::Basic
        );
        assert_eq!(parse_challenge("Bearer service=x"), Challenge::Other);
        assert_eq!(
            parse_challenge(r#"Bearer realm="unterminated"#),
            Challenge::Bearer {
                realm: "unterminated".into(),
                service: None
            }
        );
        assert_eq!(parse_challenge("Negotiate"), Challenge::Other);
    }

    #[test]
    fn only_oci_tags_and_sha_digests_are_accepted() {
        for tag in ["1.0.0", "v1", "_x", "a-b.c_d", &"a".repeat(128)] {
            assert!(is_valid_tag(tag), "{tag}");
        }
        for tag in [
            "",
            ".x",
            "-x",
            "a/b",
            "a?b",
            "1.0\nevil: x",
            "é",
            &"a".repeat(129),
        ] {
            assert!(!is_valid_tag(tag), "{tag:?}");
        }
        assert!(is_valid_digest(&format!("sha256:{}", "ab".repeat(32))));
        assert!(!is_valid_digest(&format!("sha256:{}", "AB".repeat(32))));
        assert!(!is_valid_digest("sha256:abc"));
        assert!(!is_valid_digest(&format!("md5:{}", "ab".repeat(16))));
        assert!(!is_valid_digest(&format!("sha256:{}\n", "ab".repeat(32))));
    }

    #[test]
    fn absurd_request_timeouts_are_refused_not_a_panic() {
        for timeout in [Duration::ZERO, Duration::from_secs(u64::MAX), Duration::MAX] {
            let err = OciTagSource::new(RegistryOptions {
                timeout,
                ..RegistryOptions::default()
            })
            .expect_err("refused");
            assert_eq!(err.code(), "config", "{err}");
            assert!(err.to_string().contains("timeout"), "{err}");
        }
        let err = OciTagSource::new(RegistryOptions {
            scan_timeout: Duration::ZERO,
            ..RegistryOptions::default()
        })
        .expect_err("refused");
        assert!(err.to_string().contains("scan_timeout"), "{err}");
        // The largest scan timeout is fine: tokio saturates the deadline.
        OciTagSource::new(RegistryOptions {
            scan_timeout: Duration::MAX,
            timeout: MAX_REQUEST_TIMEOUT,
            ..RegistryOptions::default()
        })
        .expect("accepted");
    }
}
