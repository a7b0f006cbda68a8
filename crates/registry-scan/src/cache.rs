//! A caching [`TagSource`]: tag lists kept on disk between runs, reused while younger than
//! an interval, and used (marked stale) when the registry fails.
//!
//! Entries are named by a hash of the image reference, never by anything a repository
//! names: an object called `/../home/.docker/config` cannot choose where a cache file goes.
//! The folder is private (0700) and entries are private (0600), written atomically; a
//! read-only cache (dry runs) never writes.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tagsmith_registry_scan::{CacheOutcome, CachedTagSource, ScanCache, SnapshotTagSource, TagSource};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let registry = Arc::new(SnapshotTagSource::from_text("reg.example.com/app: [1.0.0]")?);
//! let cached = CachedTagSource::new(registry, ScanCache::new(dir.path(), true), Duration::from_secs(300));
//! assert_eq!(cached.list_tags("reg.example.com/app").await?, ["1.0.0"]);
//! assert!(matches!(cached.outcome("reg.example.com/app"), Some(CacheOutcome::Listed { .. })));
//! // Within the interval the registry is not asked again.
//! assert_eq!(cached.list_tags("reg.example.com/app").await?, ["1.0.0"]);
//! assert!(matches!(cached.outcome("reg.example.com/app"), Some(CacheOutcome::Cached { .. })));
//! # Ok::<(), tagsmith_registry_scan::ScanError>(())
//! # }).unwrap();
//! ```

use crate::{ScanError, TagSource};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest cache entry read back (a million tags is about 20 MB of JSON).
const MAX_ENTRY_BYTES: u64 = 64 * 1024 * 1024;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One cached listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedTags {
    /// The image listed (checked on read: a hash collision or an edited entry is a miss).
    pub image: String,
    /// The tags as the registry listed them.
    pub tags: Vec<String>,
    /// When they were listed, seconds since the epoch.
    pub scanned_at: u64,
}

/// A folder of cached listings.
#[derive(Debug, Clone)]
pub struct ScanCache {
    dir: PathBuf,
    writable: bool,
    sync: bool,
}

impl ScanCache {
    /// A cache in `dir`; with `writable` false (a dry run) nothing is ever written.
    pub fn new(dir: impl Into<PathBuf>, writable: bool) -> Self {
        ScanCache {
            dir: dir.into(),
            writable,
            sync: true,
        }
    }

    /// Entries are still written atomically (a temp file renamed over the old one) but
    /// not flushed to disk first: after a power failure an entry may be empty or older,
    /// which reads as a miss or an older listing. For a cache whose every loss costs only
    /// a listing (the controller's tag store), not a user's run.
    pub fn without_sync(mut self) -> Self {
        self.sync = false;
        self
    }

    /// The file of `image`: a hash of the reference, so repository content cannot steer it.
    pub fn path_of(&self, image: &str) -> PathBuf {
        let digest = Sha256::digest(image.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.json"))
    }

    /// The entry of `image`, if there is a readable one for exactly that image.
    pub fn load(&self, image: &str) -> Option<CachedTags> {
        let path = self.path_of(image);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_ENTRY_BYTES {
            return None;
        }
        let entry: CachedTags = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        (entry.image == image).then_some(entry)
    }

    /// Stores a listing: a private folder, a private file, written atomically. Failures
    /// are logged, not fatal: the cache only saves registry calls.
    pub fn store(&self, entry: &CachedTags) {
        if !self.writable {
            return;
        }
        if let Err(e) = self.try_store(entry) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the scan cache");
        }
    }

    fn try_store(&self, entry: &CachedTags) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        // A folder made earlier (or by someone else) with wider permissions is narrowed.
        let meta = std::fs::metadata(&self.dir)?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let json = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        // tempfile creates the file 0600 in the same folder; the rename is atomic.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tagsmith-cache-")
            .tempfile_in(&self.dir)?;
        tmp.write_all(&json)?;
        if self.sync {
            tmp.as_file().sync_all()?;
        }
        tmp.persist(self.path_of(&entry.image))
            .map_err(|e| e.error)?;
        Ok(())
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// How the last listing of an image through a [`CachedTagSource`] was served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The registry answered (and the cache was updated).
    Listed {
        /// When.
        scanned_at: u64,
    },
    /// A cache entry younger than the interval was used; the registry was not asked.
    Cached {
        /// When the entry was listed.
        scanned_at: u64,
    },
    /// The registry failed and an older entry was used: results may be out of date.
    Stale {
        /// When the entry was listed.
        scanned_at: u64,
        /// The registry's error.
        error: String,
    },
}

impl CacheOutcome {
    /// When the tags served were listed.
    pub fn scanned_at(&self) -> u64 {
        match self {
            CacheOutcome::Listed { scanned_at }
            | CacheOutcome::Cached { scanned_at }
            | CacheOutcome::Stale { scanned_at, .. } => *scanned_at,
        }
    }
}

/// A [`TagSource`] that answers from a [`ScanCache`] while an entry is younger than
/// `max_age`, asks `inner` otherwise, and falls back to an older entry when `inner` fails.
pub struct CachedTagSource {
    inner: Arc<dyn TagSource>,
    cache: ScanCache,
    max_age: Duration,
    outcomes: Mutex<HashMap<String, CacheOutcome>>,
}

impl CachedTagSource {
    /// Caches `inner` in `cache` for `max_age` (an ImageRepository's `spec.interval`).
    pub fn new(inner: Arc<dyn TagSource>, cache: ScanCache, max_age: Duration) -> Self {
        CachedTagSource {
            inner,
            cache,
            max_age,
            outcomes: Mutex::new(HashMap::new()),
        }
    }

    /// How the last listing of `image` was served.
    pub fn outcome(&self, image: &str) -> Option<CacheOutcome> {
        self.outcomes
            .lock()
            .ok()
            .and_then(|map| map.get(image).cloned())
    }

    fn record(&self, image: &str, outcome: CacheOutcome) {
        if let Ok(mut map) = self.outcomes.lock() {
            map.insert(image.to_string(), outcome);
        }
    }
}

#[async_trait]
impl TagSource for CachedTagSource {
    async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
        let hit = self.cache.load(image);
        if let Some(entry) = &hit {
            if now_secs().saturating_sub(entry.scanned_at) < self.max_age.as_secs() {
                self.record(
                    image,
                    CacheOutcome::Cached {
                        scanned_at: entry.scanned_at,
                    },
                );
                return Ok(entry.tags.clone());
            }
        }
        match self.inner.list_tags(image).await {
            Ok(tags) => {
                let entry = CachedTags {
                    image: image.to_string(),
                    tags,
                    scanned_at: now_secs(),
                };
                self.cache.store(&entry);
                self.record(
                    image,
                    CacheOutcome::Listed {
                        scanned_at: entry.scanned_at,
                    },
                );
                Ok(entry.tags)
            }
            Err(error) => match hit {
                Some(old) => {
                    tracing::warn!(%image, %error, "registry failed; using the scan cached {} s ago", now_secs().saturating_sub(old.scanned_at));
                    self.record(
                        image,
                        CacheOutcome::Stale {
                            scanned_at: old.scanned_at,
                            error: error.to_string(),
                        },
                    );
                    Ok(old.tags)
                }
                None => Err(error),
            },
        }
    }

    async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError> {
        self.inner.resolve_digest(image, tag).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Failing;

    #[async_trait]
    impl TagSource for Failing {
        async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
            Err(ScanError::NotInSnapshot {
                image: image.into(),
            })
        }
        async fn resolve_digest(&self, image: &str, _: &str) -> Result<String, ScanError> {
            Err(ScanError::NotInSnapshot {
                image: image.into(),
            })
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn entries_are_named_by_hash_whatever_the_image_says() {
        let cache = ScanCache::new("/cache", true);
        for image in ["/../victimhome/.docker/config", "reg/app", "a/../../b"] {
            let path = cache.path_of(image);
            assert_eq!(path.parent(), Some(Path::new("/cache")), "{image}");
            assert_eq!(path.file_name().unwrap().len(), 64 + 5);
        }
    }

    #[test]
    fn cache_files_are_private_and_a_dry_run_writes_none() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        let entry = CachedTags {
            image: "reg/app".into(),
            tags: vec!["1.0.0".into()],
            scanned_at: 7,
        };
        ScanCache::new(&folder, false).store(&entry);
        assert!(!folder.exists());
        let cache = ScanCache::new(&folder, true);
        cache.store(&entry);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(mode(&cache.path_of("reg/app")), 0o600);
        assert_eq!(cache.load("reg/app"), Some(entry));
        // An entry of another image under this name (edited, or a collision) is a miss.
        assert_eq!(cache.load("reg/other"), None);
        std::fs::write(cache.path_of("reg/app"), "{not json").unwrap();
        assert_eq!(cache.load("reg/app"), None);
    }

    #[test]
    fn a_failing_registry_falls_back_to_an_old_entry_marked_stale() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScanCache::new(dir.path(), true);
        let source =
            CachedTagSource::new(Arc::new(Failing), cache.clone(), Duration::from_secs(60));
        let rt = rt();
        assert!(rt.block_on(source.list_tags("reg/app")).is_err());
        cache.store(&CachedTags {
            image: "reg/app".into(),
            tags: vec!["1.0.0".into()],
            scanned_at: 1,
        });
        assert_eq!(rt.block_on(source.list_tags("reg/app")).unwrap(), ["1.0.0"]);
        match source.outcome("reg/app") {
            Some(CacheOutcome::Stale {
                scanned_at: 1,
                error,
            }) => {
                assert!(error.contains("reg/app"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }
}
