//! The crate's one error type. Messages name the image, registry and status; they never
//! hold a credential, and every piece that came from a registry or a file (names, bodies,
//! tags) is clipped to [`MAX_ECHO`] characters so that one error stays one readable line.

use std::borrow::Cow;

/// The most characters of one remote or file-supplied piece (an image name, a registry
/// error body, a tag) an error message repeats; longer pieces end in `…`.
pub const MAX_ECHO: usize = 256;

/// `text` cut to [`MAX_ECHO`] characters (on a char boundary) with `…` when cut.
pub(crate) fn clip(text: &str) -> Cow<'_, str> {
    clip_to(text, MAX_ECHO)
}

/// `text` cut to `max` characters (on a char boundary) with `…` when cut.
pub(crate) fn clip_to(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames, serde::Serialize)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ScanError {
    /// The image reference does not parse.
    #[error("invalid image reference {:?}: {}", clip(.image), clip(.reason))]
    InvalidReference {
        /// The reference given.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry refused the credentials (401/403).
    #[error("registry {} refused access to {} (401/403): check the credentials for {}", clip(.registry), clip(.image), clip(.registry))]
    AuthFailed {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
    },
    /// The repository does not exist.
    #[error("registry {} has no repository {}", clip(.registry), clip(.image))]
    NotFound {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
    },
    /// The registry kept answering 429 until the retry budget ran out.
    #[error("registry {} rate-limited {} (429) {attempts} times; gave up after {elapsed_ms} ms", clip(.registry), clip(.image))]
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
    #[error("registry {} did not answer for {} within {timeout_ms} ms, {attempts} times; gave up", clip(.registry), clip(.image))]
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
    /// The whole operation (every page, retry, wait and slow body of one listing or one
    /// digest lookup) outlasted `RegistryOptions::scan_timeout`, Flux's `spec.timeout`.
    #[error("scanning {} on registry {} did not finish within the scan timeout of {timeout_ms} ms; gave up", clip(.image), clip(.registry))]
    ScanTimeout {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
        /// The scan timeout.
        timeout_ms: u64,
    },
    /// A response body was larger than `RegistryOptions::max_body_bytes`; reading stopped
    /// at the limit.
    #[error("registry {} sent a {what} for {} larger than the limit of {limit_bytes} bytes; stopped reading", clip(.registry), clip(.image))]
    BodyTooLarge {
        /// Registry host (or the token service's host).
        registry: String,
        /// Image.
        image: String,
        /// Which body: `tags page`, `token response`, `manifest`.
        what: &'static str,
        /// The limit.
        limit_bytes: u64,
    },
    /// The registry kept sending `Link` (or full pages) past `RegistryOptions::max_pages`.
    #[error("registry {} was still paging the tags of {} after {limit} pages (the page limit); gave up", clip(.registry), clip(.image))]
    TooManyPages {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
        /// The page limit.
        limit: usize,
    },
    /// The listing grew past `RegistryOptions::max_tags` distinct tags.
    #[error("registry {} listed more than {limit} tags (the tag limit) for {}; gave up", clip(.registry), clip(.image))]
    TooManyTags {
        /// Registry host.
        registry: String,
        /// Image.
        image: String,
        /// The tag limit.
        limit: usize,
    },
    /// Another HTTP failure (5xx after retries, unexpected status, bad body).
    #[error("registry {} failed for {}{}: {}", clip(.registry), clip(.image), status.map(|s| format!(" with HTTP {s}")).unwrap_or_default(), clip_to(.message, 2 * MAX_ECHO))]
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
    /// Reading configuration (Docker config, CA bundle, snapshot, registry options) failed.
    #[error("{path}: {}", clip_to(.message, 2 * MAX_ECHO))]
    Config {
        /// The file (or `<registry options>`, `<snapshot>`).
        path: String,
        /// What is wrong; never any part of a credential file's content.
        message: String,
    },
    /// A snapshot has no entry for the image.
    #[error("the tag snapshot has no image {:?}", clip(.image))]
    NotInSnapshot {
        /// Image.
        image: String,
    },
    /// An exclusion pattern does not compile.
    #[error(transparent)]
    #[serde(skip)] // carries its own code: bindings map the inner error
    Policy(#[from] tagsmith_image_policy_core::PolicyError),
}

impl ScanError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        // The variant's name in snake_case, derived once (strum); a policy error keeps its
        // own code.
        match self {
            ScanError::Policy(e) => e.code(),
            other => other.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_stops_on_a_char_boundary_with_an_ellipsis() {
        assert_eq!(clip("short"), "short");
        let exact = "é".repeat(MAX_ECHO);
        assert_eq!(clip(&exact), exact);
        let long = "é".repeat(MAX_ECHO + 1);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), MAX_ECHO + 1);
        assert!(clipped.ends_with("é…"), "{clipped}");
    }

    #[test]
    fn a_megabyte_image_name_gives_a_short_error_line() {
        let image = format!("reg.example.com/{}", "a".repeat(1 << 20));
        let err = ScanError::NotFound {
            registry: "reg.example.com".into(),
            image,
        };
        let line = err.to_string();
        assert!(line.len() < 2 * MAX_ECHO, "{} bytes", line.len());
        assert!(line.contains('…'), "{line}");
    }

    #[test]
    fn a_megabyte_registry_error_body_gives_a_short_error_line() {
        let err = ScanError::Http {
            registry: "reg.example.com".into(),
            image: "reg.example.com/app".into(),
            status: Some(500),
            message: format!("HTTP 500: {}", "x".repeat(1 << 20)),
        };
        let line = err.to_string();
        assert!(line.len() < 4 * MAX_ECHO, "{} bytes", line.len());
        assert!(
            line.contains("reg.example.com/app") && line.contains('…'),
            "{line}"
        );
    }
}
