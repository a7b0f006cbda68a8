//! The crate's one error type. Messages name the image, registry and status; they never
//! hold a credential.

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The image reference does not parse.
    #[error("invalid image reference {image:?}: {reason}")]
    InvalidReference {
        /// The reference given.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry refused the credentials (401/403).
    #[error("registry {registry} refused access to {image} (401/403): check the credentials for {registry}")]
    AuthFailed {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
    },
    /// The repository does not exist.
    #[error("registry {registry} has no repository {image}")]
    NotFound {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
    },
    /// The registry kept answering 429 until the retry budget ran out.
    #[error("registry {registry} rate-limited {image} (429) {attempts} times; gave up after {elapsed_ms} ms")]
    RateLimited {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
        /// Requests made.
        attempts: u32,
        /// Time spent.
        elapsed_ms: u64,
    },
    /// Requests kept timing out (connect or read) until the retry budget ran out.
    #[error("registry {registry} did not answer for {image} within {timeout_ms} ms, {attempts} times; gave up")]
    Timeout {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
        /// Requests made.
        attempts: u32,
        /// The per-request timeout.
        timeout_ms: u64,
    },
    /// Another HTTP failure (5xx after retries, unexpected status, bad body).
    #[error("registry {registry} failed for {image}{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Http {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// Reading configuration (Docker config, CA bundle, snapshot) failed.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A snapshot has no entry for the image.
    #[error("the tag snapshot has no image {image:?}")]
    NotInSnapshot {
        /// Image.
        image: String,
    },
    /// An exclusion pattern does not compile.
    #[error(transparent)]
    Policy(#[from] tagsmith_image_policy_core::PolicyError),
}

impl ScanError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            ScanError::InvalidReference { .. } => "invalid_reference",
            ScanError::AuthFailed { .. } => "auth_failed",
            ScanError::NotFound { .. } => "not_found",
            ScanError::RateLimited { .. } => "rate_limited",
            ScanError::Timeout { .. } => "timeout",
            ScanError::Http { .. } => "http",
            ScanError::Config { .. } => "config",
            ScanError::NotInSnapshot { .. } => "not_in_snapshot",
            ScanError::Policy(e) => e.code(),
        }
    }
}
