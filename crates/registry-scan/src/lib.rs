//! Listing the tags of container images, as Flux's `ImageRepository` does.
//!
//! A [`TagSource`] lists tags and resolves digests. [`OciTagSource`] talks to registries
//! with one HTTP client of ours (basic, bearer and Docker-config auth, tag pages with `Link`
//! headers, `Retry-After`, 429/5xx/timeout retries with bounded backoff, digests), every
//! scan under a deadline and every body under a cap; `oci-client` parses references.
//! [`SnapshotTagSource`] reads a file, so everything runs offline; [`CachedTagSource`]
//! keeps listings between runs. [`scan`] applies the
//! exclusion list and fills a [`ScanResult`] like Flux's `status.lastScanResult`;
//! [`scan_many`] scans many images with a concurrency limit. Errors are one
//! [`ScanError`] with a stable [`ScanError::code`]; secrets print `<redacted>`.
//!
//! ```
//! use tagsmith_registry_scan::{SnapshotTagSource, TagSource};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let source = SnapshotTagSource::from_text("nginx: ['1.25.0', '1.27.1']")?;
//! // Docker Hub names are normalised: nginx == docker.io/library/nginx.
//! assert_eq!(source.list_tags("docker.io/library/nginx").await?, ["1.25.0", "1.27.1"]);
//! # Ok::<(), tagsmith_registry_scan::ScanError>(())
//! # }).unwrap();
//! ```

mod cache;
mod docker_config;
mod error;
mod oci;
mod scan;
mod secret;
mod snapshot;

pub use cache::{CacheOutcome, CachedTagSource, CachedTags, ScanCache};
pub use docker_config::{credentials_for, credentials_from_json};
pub use error::{ScanError, MAX_ECHO};
pub use oci::{
    flux_scan_timeout, OciTagSource, RegistryOptions, RetryPolicy, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_PAGES, DEFAULT_MAX_TAGS, DEFAULT_SCAN_TIMEOUT, MAX_REQUEST_TIMEOUT,
};
pub use scan::{scan, scan_many, ScanRequest, ScanResult, LATEST_TAGS};
pub use secret::{Credentials, Secret};
pub use snapshot::{SnapshotTagSource, MAX_SNAPSHOT_ALIAS_NODES, MAX_SNAPSHOT_DEPTH};

use async_trait::async_trait;

/// Where tags come from: a registry, a snapshot, or anything a program plugs in.
#[async_trait]
pub trait TagSource: Send + Sync {
    /// All tags of `image` (a reference without tag, e.g. `reg.example.com/team/app`).
    async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError>;

    /// The manifest digest (`sha256:...`) of `image:tag`; for a multi-arch image, the
    /// index digest.
    async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError>;
}
