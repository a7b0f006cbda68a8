//! One scan (`ImageRepository` reconcile) and many at once.

use crate::{ScanError, TagSource};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tagsmith_image_policy_core::Exclusions;

/// How many tags Flux shows in `status.lastScanResult.latestTags`.
pub const LATEST_TAGS: usize = 10;

/// What a scan found: Flux's `status.lastScanResult`, plus the tags themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanResult {
    /// The image scanned.
    pub image: String,
    /// Tags after exclusions, in the order Flux stores them: descending by string (byte
    /// order), so `v3.7.2` comes before `3.7.2` and `2.2.2` before `10.0.0`.
    ///
    /// Flux's image-reflector-controller sorts each scan's tags in place, a stable sort
    /// (`slices.SortStableFunc`) descending by `strings.Compare` (`sortTagsAndGetLatestTags`
    /// in `internal/controller/imagerepository_controller.go`), before `SetTags` stores them;
    /// `ImagePolicy` reads that list, and its semver policy keeps the first of equal
    /// versions, so the order decides ties such as `v3.7.2` against `3.7.2`.
    pub tags: Vec<String>,
    /// How many tags remain after exclusions.
    pub tag_count: usize,
    /// How many tags the exclusion list dropped.
    pub excluded_count: usize,
    /// The first [`LATEST_TAGS`] of `tags`, as Flux lists `latestTags`.
    pub latest_tags: Vec<String>,
    /// When the scan finished, seconds since the Unix epoch.
    pub scanned_at: u64,
    /// How long it took.
    pub duration_ms: u64,
}

/// Lists the tags of `image`, drops those the exclusion list matches and orders the rest
/// as Flux stores them (descending by string; see [`ScanResult::tags`]).
///
/// ```
/// use tagsmith_registry_scan::{scan, SnapshotTagSource};
/// use tagsmith_image_policy_core::Exclusions;
/// # tokio_test(async {
/// let source = SnapshotTagSource::from_text("reg.example.com/app: [1.0.0, 1.1.0, sha256-1.sig]")?;
/// let result = scan(&source, "reg.example.com/app", &Exclusions::flux_default()).await?;
/// assert_eq!(result.tags, ["1.1.0", "1.0.0"]);
/// assert_eq!(result.excluded_count, 1);
/// assert_eq!(result.latest_tags, ["1.1.0", "1.0.0"]);
/// # Ok::<(), tagsmith_registry_scan::ScanError>(())
/// # });
/// # fn tokio_test<F: std::future::Future<Output = Result<(), tagsmith_registry_scan::ScanError>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f).unwrap()
/// # }
/// ```
pub async fn scan(
    source: &dyn TagSource,
    image: &str,
    exclusions: &Exclusions,
) -> Result<ScanResult, ScanError> {
    let start = Instant::now();
    let all = source.list_tags(image).await?;
    let (mut tags, excluded_count) = exclusions.retain(all);
    // Stable, like Go's `slices.SortStableFunc`; `str` compares bytes, like `strings.Compare`.
    tags.sort_by(|a, b| b.cmp(a));
    let latest_tags = tags.iter().take(LATEST_TAGS).cloned().collect();
    Ok(ScanResult {
        image: image.to_string(),
        tag_count: tags.len(),
        tags,
        excluded_count,
        latest_tags,
        scanned_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// One request of [`scan_many`].
pub struct ScanRequest {
    /// The image.
    pub image: String,
    /// Where its tags come from.
    pub source: Arc<dyn TagSource>,
    /// Its exclusion list.
    pub exclusions: Exclusions,
}

/// Scans many images with at most `concurrency` in flight; results come back in request
/// order, each its own `Result` so that one failing registry does not hide the others.
pub async fn scan_many(
    requests: Vec<ScanRequest>,
    concurrency: usize,
) -> Vec<Result<ScanResult, ScanError>> {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut handles = Vec::with_capacity(requests.len());
    for request in requests {
        let limit = Arc::clone(&limit);
        handles.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            scan(request.source.as_ref(), &request.image, &request.exclusions).await
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.unwrap_or_else(|e| {
            Err(ScanError::Http {
                registry: "-".into(),
                image: "-".into(),
                status: None,
                message: format!("scan task failed: {e}"),
            })
        }));
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SnapshotTagSource;

    fn run(source: &SnapshotTagSource, exclusions: &Exclusions) -> ScanResult {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(scan(source, "reg.example.com/app", exclusions))
            .expect("scan")
    }

    #[test]
    fn latest_tags_are_the_ten_greatest_in_reverse_string_order_like_flux() {
        // Flux's image-reflector-controller sorts the tags in reverse string order and
        // keeps 10: "10.0.0" sorts below "2.2.2".
        let source = SnapshotTagSource::from_text(
            "reg.example.com/app: ['1.0.0', '0.0.8', '1.2.5', '3.0.1', '1.0.1', '5.1.1', '4.1.0', '4.5.0', '4.0.3', '2.2.2', '10.0.0', 'x.sig']",
        )
        .expect("snapshot");
        let result = run(&source, &Exclusions::flux_default());
        assert_eq!(
            result.latest_tags,
            [
                "5.1.1", "4.5.0", "4.1.0", "4.0.3", "3.0.1", "2.2.2", "10.0.0", "1.2.5", "1.0.1",
                "1.0.0"
            ]
        );
        assert_eq!(result.tag_count, 11);
        assert_eq!(result.excluded_count, 1);
        let none = run(&source, &Exclusions::none());
        assert_eq!((none.tag_count, none.excluded_count), (12, 0));
        assert_eq!(none.latest_tags[0], "x.sig");
    }

    #[test]
    fn tags_are_kept_in_flux_stored_order_so_semver_prefers_the_v_prefixed_twin() {
        // Registry order puts the plain tag first; Flux stores the scan descending by
        // string, and its semver policy keeps the first of equal versions: v3.7.2 wins.
        let source = SnapshotTagSource::from_text(
            "reg.example.com/app: ['3.7.2', '10.0.0', 'v3.7.2', '2.2.2', '3.7.2-rc.1']",
        )
        .expect("snapshot");
        let result = run(&source, &Exclusions::flux_default());
        assert_eq!(
            result.tags,
            ["v3.7.2", "3.7.2-rc.1", "3.7.2", "2.2.2", "10.0.0"]
        );
        assert_eq!(result.latest_tags, result.tags);
        let chosen = tagsmith_image_policy_core::select_latest(
            &result.tags,
            &tagsmith_image_policy_core::PolicySpec::semver("3.x"),
        )
        .expect("a tag");
        assert_eq!(chosen, "v3.7.2");
    }
}
