//! The registry [`TagSource`] on `oci-client`: paging, auth, retries.

use crate::docker_config::credentials_for;
use crate::secret::Credentials;
use crate::{ScanError, TagSource};
use async_trait::async_trait;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::collections::HashSet;
use std::path::PathBuf;
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
}

/// How to reach one registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP (Flux's `spec.insecure`); only when asked.
    pub insecure: bool,
    /// Extra PEM CA certificates to trust (Flux's `certSecretRef`).
    pub ca_bundle: Option<PathBuf>,
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
            timeout: Duration::from_secs(30),
            credentials: Credentials::Anonymous,
            retry: RetryPolicy::default(),
            page_size: 1000,
        }
    }
}

/// Tags from an OCI registry.
pub struct OciTagSource {
    client: Client,
    options: RegistryOptions,
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
        if let Some(path) = &options.ca_bundle {
            let data = std::fs::read(path).map_err(|e| ScanError::Config {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
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
        Ok(OciTagSource {
            client: Client::new(config),
            options,
        })
    }

    fn auth_for(&self, reference: &Reference) -> Result<RegistryAuth, ScanError> {
        let credentials = match &self.options.credentials {
            Credentials::DockerConfig(path) => credentials_for(path, reference.resolve_registry())?,
            other => other.clone(),
        };
        Ok(match credentials {
            Credentials::Anonymous | Credentials::DockerConfig(_) => RegistryAuth::Anonymous,
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
        let registry = reference.resolve_registry().to_string();
        let policy = &self.options.retry;
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match call().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let class = classify(&err);
            let out_of_budget = attempt >= policy.max_attempts
                || start.elapsed() + policy.delay(attempt - 1) > policy.max_total;
            if class.retryable() && !out_of_budget {
                let wait = policy.delay(attempt - 1);
                tracing::warn!(%registry, %image, attempt, ?wait, "registry answered {}; retrying", class.describe());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(match class {
                Class::RateLimited => ScanError::RateLimited {
                    registry,
                    image: image.to_string(),
                    attempts: attempt,
                    elapsed_ms: start.elapsed().as_millis() as u64,
                },
                Class::Auth => ScanError::AuthFailed {
                    registry,
                    image: image.to_string(),
                },
                Class::NotFound => ScanError::NotFound {
                    registry,
                    image: image.to_string(),
                },
                Class::Server(status) | Class::Other(status) => ScanError::Http {
                    registry,
                    image: image.to_string(),
                    status,
                    message: format!("{} (after {attempt} attempts)", redact(&err.to_string())),
                },
                Class::Transport => ScanError::Http {
                    registry,
                    image: image.to_string(),
                    status: None,
                    message: format!("{} (after {attempt} attempts)", redact(&err.to_string())),
                },
            });
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
            Class::RateLimited | Class::Server(_) | Class::Transport
        )
    }

    fn describe(&self) -> String {
        match self {
            Class::RateLimited => "429 Too Many Requests".into(),
            Class::Server(Some(s)) => format!("HTTP {s}"),
            Class::Transport => "a transport error".into(),
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
            } else if e.is_timeout()
                || e.is_connect()
                || e.is_request()
                || e.is_body()
                || e.is_decode()
            {
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
        let n = self.options.page_size.max(1);
        let mut tags: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .with_retries(&reference, image, || {
                    self.client
                        .list_tags(&reference, &auth, Some(n), last.as_deref())
                })
                .await?;
            let before = tags.len();
            for tag in page.tags {
                if seen.insert(tag.clone()) {
                    tags.push(tag);
                }
            }
            // The next page starts after the last tag seen. A short page, or a page that
            // adds nothing (a registry ignoring `last`), ends the listing.
            if tags.len() == before || tags.len() - before < n {
                break;
            }
            last = tags.last().cloned();
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
