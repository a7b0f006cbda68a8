//! Stage 1, scan: every ImageRepository's tags, as image-reflector-controller lists them,
//! `concurrency` at a time, each bounded by its `spec.timeout`, through the scan cache.

use super::report::RepositoryReport;
use super::RunContext;
use crate::crd::{FluxObjects, ImageRepository};
use crate::error::{ObjectCode, ObjectError};
use crate::names::ObjectKey;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tagsmith_image_policy_core::Exclusions;
use tagsmith_registry_scan::{
    scan, CacheOutcome, CachedTagSource, Credentials, OciTagSource, RegistryOptions, ScanCache,
    ScanError, ScanResult, SnapshotTagSource, TagSource,
};

/// One repository's scan: its report, and the tags when there are any to select from.
pub struct RepositoryScan {
    /// What the report says.
    pub report: RepositoryReport,
    /// The tags (in Flux's stored order), when the scan (or a cached one) succeeded.
    pub result: Option<ScanResult>,
    /// Where the tags came from (digests are resolved through it).
    pub source: Option<Arc<dyn TagSource>>,
}

/// Stage 1's value: every repository's scan, by `namespace:name`.
#[derive(Default)]
pub struct Scans {
    by_key: BTreeMap<ObjectKey, RepositoryScan>,
}

impl Scans {
    /// The scan of one repository.
    pub fn get(&self, key: &ObjectKey) -> Option<&RepositoryScan> {
        self.by_key.get(key)
    }

    /// The reports, in `namespace:name` order.
    pub fn reports(&self) -> Vec<RepositoryReport> {
        self.by_key.values().map(|s| s.report.clone()).collect()
    }

    /// Adds one repository's scan (a controller assembles the scans a policy needs).
    pub fn insert(&mut self, key: ObjectKey, scan: RepositoryScan) {
        self.by_key.insert(key, scan);
    }
}

/// An injected [`TagSource`] bounded by a deadline per call, as the registry client bounds
/// itself (Flux's `spec.timeout` bounds a whole scan: every page, retry and slow body).
struct Deadline {
    inner: Arc<dyn TagSource>,
    timeout: Duration,
}

#[async_trait::async_trait]
impl TagSource for Deadline {
    async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
        tokio::time::timeout(self.timeout, self.inner.list_tags(image))
            .await
            .unwrap_or_else(|_| Err(deadline_error(image, self.timeout)))
    }

    async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError> {
        tokio::time::timeout(self.timeout, self.inner.resolve_digest(image, tag))
            .await
            .unwrap_or_else(|_| Err(deadline_error(image, self.timeout)))
    }
}

fn deadline_error(image: &str, timeout: Duration) -> ScanError {
    ScanError::ScanTimeout {
        registry: image.split('/').next().unwrap_or_default().to_string(),
        image: image.to_string(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

fn scan_error(repo: &ImageRepository, e: &ScanError) -> ObjectError {
    let mut error = ObjectError::from_coded(e.code(), e);
    error.file = Some(repo.origin.file.display().to_string());
    error.line = Some(repo.origin.line);
    error
}

/// The registry source of one repository: the snapshot, or the registry with the
/// repository's own secrets (looked up by validated name in its own namespace).
fn registry_source(
    ctx: &RunContext,
    repo: &ImageRepository,
) -> Result<Arc<dyn TagSource>, ObjectError> {
    if let Some(source) = &ctx.tag_source {
        // A program's own source gets the same bound the registry client enforces itself.
        return Ok(Arc::new(Deadline {
            inner: Arc::clone(source),
            timeout: repo.timeout,
        }));
    }
    if let Some(snapshot) = &ctx.config.snapshot {
        return SnapshotTagSource::from_path(snapshot)
            .map(|s| Arc::new(s) as Arc<dyn TagSource>)
            .map_err(|e| scan_error(repo, &e));
    }
    let secret = |key: &Option<ObjectKey>, name: &str, field: &str| {
        let Some(key) = key else {
            return Ok(None);
        };
        let value = ctx.secrets.get(key, name).map_err(|e| {
            repo.origin
                .error(ObjectCode::Secret.as_str(), field, e.to_string())
        })?;
        if value.is_none() {
            tracing::warn!(repository = %repo.origin.key, secret = %key, "{field} names a secret that is not found (key {name}); going on without it");
        }
        Ok::<_, ObjectError>(value)
    };
    let credentials = match secret(&repo.secret_ref, ".dockerconfigjson", "spec.secretRef")? {
        Some(json) => Credentials::DockerConfigJson {
            source: format!(
                "secret {} key .dockerconfigjson",
                repo.secret_ref
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
            json,
        },
        None => ctx
            .config
            .docker_config
            .clone()
            .map_or(Credentials::Anonymous, Credentials::DockerConfig),
    };
    let ca_pem = secret(&repo.cert_secret_ref, "ca.crt", "spec.certSecretRef")?.map(|pem| {
        (
            format!(
                "secret {} key ca.crt",
                repo.cert_secret_ref
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
            pem.expose().as_bytes().to_vec(),
        )
    });
    OciTagSource::new(RegistryOptions {
        insecure: repo.insecure,
        ca_pem,
        credentials,
        scan_timeout: repo.timeout,
        ..RegistryOptions::default()
    })
    .map(|s| Arc::new(s) as Arc<dyn TagSource>)
    .map_err(|e| scan_error(repo, &e))
}

/// Scans one repository through the cache: fresh entries are reused; when the registry
/// fails, an older entry is used and marked stale; a suspended repository is not scanned
/// and keeps its last scan, as Flux keeps its status. (The controller calls this per
/// ImageRepository; the cache folder is then its persistent tag store.)
pub async fn scan_repository(ctx: &RunContext, repo: &ImageRepository) -> RepositoryScan {
    let report = RepositoryReport {
        repository: repo.origin.key(),
        cluster: None,
        image: repo.image.clone(),
        tag_count: 0,
        latest_tags: Vec::new(),
        cached: false,
        stale: false,
        scanned_at: 0,
        error: None,
    };
    let failed = |mut report: RepositoryReport, error: ObjectError| {
        report.error = Some(error);
        RepositoryScan {
            report,
            result: None,
            source: None,
        }
    };
    let base = match registry_source(ctx, repo) {
        Ok(source) => source,
        Err(e) => return failed(report, e),
    };
    let exclusions = match Exclusions::new(&repo.exclusion_list) {
        Ok(e) => e,
        Err(e) => {
            return failed(
                report,
                repo.origin
                    .error(e.code(), "spec.exclusionList", e.to_string()),
            )
        }
    };
    let cache = ctx
        .config
        .effective_cache_dir()
        .filter(|_| ctx.tag_source.is_none())
        .map(|dir| ScanCache::new(dir, !ctx.config.dry_run));
    if repo.suspend {
        let cached = cache.as_ref().and_then(|c| c.load(&repo.image));
        let Some(entry) = cached else {
            let error = repo.origin.error(
                ObjectCode::Suspended.as_str(),
                "spec.suspend",
                "true, and there is no earlier scan to use",
            );
            return failed(report, error);
        };
        // Flux does not scan a suspended repository; its last scan stands.
        let mut last = SnapshotTagSource::default();
        last.insert(&repo.image, entry.tags);
        let result = scan(&last, &repo.image, &exclusions).await;
        let outcome = CacheOutcome::Cached {
            scanned_at: entry.scanned_at,
        };
        return finish(report, result, Some(outcome), base, repo);
    }
    let (source, cached): (Arc<dyn TagSource>, Option<Arc<CachedTagSource>>) = match cache {
        Some(cache) => {
            let cached = Arc::new(CachedTagSource::new(
                Arc::clone(&base),
                cache,
                repo.interval,
            ));
            (cached.clone(), Some(cached))
        }
        None => (Arc::clone(&base), None),
    };
    let result = scan(source.as_ref(), &repo.image, &exclusions).await;
    let outcome = cached.and_then(|c| c.outcome(&repo.image));
    finish(report, result, outcome, base, repo)
}

fn finish(
    mut report: RepositoryReport,
    result: Result<ScanResult, ScanError>,
    outcome: Option<CacheOutcome>,
    source: Arc<dyn TagSource>,
    repo: &ImageRepository,
) -> RepositoryScan {
    match result {
        Ok(mut result) => {
            if let Some(outcome) = &outcome {
                result.scanned_at = outcome.scanned_at();
                match outcome {
                    CacheOutcome::Listed { .. } => {}
                    CacheOutcome::Cached { .. } => report.cached = true,
                    CacheOutcome::Stale { error, .. } => {
                        report.stale = true;
                        let mut e = ObjectError::new(
                            ObjectCode::Stale.as_str(),
                            format!(
                                "the registry failed; using the scan cached at {}: {error}",
                                result.scanned_at
                            ),
                        );
                        e.file = Some(repo.origin.file.display().to_string());
                        e.line = Some(repo.origin.line);
                        report.error = Some(e);
                    }
                }
            }
            report.tag_count = result.tag_count;
            report.latest_tags = result.latest_tags.clone();
            report.scanned_at = result.scanned_at;
            RepositoryScan {
                report,
                result: Some(result),
                source: Some(source),
            }
        }
        Err(e) => {
            report.error = Some(scan_error(repo, &e));
            RepositoryScan {
                report,
                result: None,
                source: None,
            }
        }
    }
}

/// Stage 1: scans every repository, `concurrency` at a time; one slow registry holds only
/// its own slot, and only until its `spec.timeout`.
pub async fn scan_repositories(ctx: &RunContext, objects: &FluxObjects) -> Scans {
    let limit = Arc::new(tokio::sync::Semaphore::new(ctx.config.concurrency.max(1)));
    let scans = objects.repositories.iter().map(|repo| {
        let limit = Arc::clone(&limit);
        async move {
            let _permit = limit.acquire().await;
            let scanned = scan_repository(ctx, repo).await;
            if let Some(progress) = &ctx.progress {
                (progress.0)(&scanned.report);
            }
            (repo.origin.key.clone(), scanned)
        }
    });
    Scans {
        by_key: futures::future::join_all(scans).await.into_iter().collect(),
    }
}
