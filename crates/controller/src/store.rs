//! The tag store: each scanned image's tags (after exclusions, in Flux's stored order),
//! kept on disk under `--storage-path` by registry-scan's [`ScanCache`] (private files
//! named by a hash of the image, written atomically). A restart finds them there, so
//! repositories scanned within their interval are not scanned again and policies keep
//! their tags, as Flux's image-reflector-controller keeps them in its database.

use crate::error::ControllerError;
use std::path::{Path, PathBuf};
use tagsmith::registry::{CachedTags, ScanCache};

/// The store.
#[derive(Debug, Clone)]
pub struct TagStore {
    cache: ScanCache,
}

impl TagStore {
    /// A store in `dir`, created private (0700) if missing; refused when it cannot be
    /// written (a read-only volume would make every restart rescan everything).
    pub fn open(dir: &Path) -> Result<Self, ControllerError> {
        let error = |e: std::io::Error| ControllerError::Store {
            path: dir.to_path_buf(),
            message: e.to_string(),
        };
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(error)?;
        tempfile::Builder::new()
            .prefix(".tagsmith-write-check-")
            .tempfile_in(dir)
            .map_err(error)?;
        Ok(TagStore {
            // A lost write costs one listing: entries are not flushed to disk one by one
            // (a thousand repositories made a thousand fsyncs on the reconcilers' path).
            cache: ScanCache::new(dir, true).without_sync(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> PathBuf {
        self.cache.dir().to_path_buf()
    }

    /// The stored tags of `image` and when they were listed.
    pub fn tags(&self, image: &str) -> Option<CachedTags> {
        self.cache.load(image)
    }

    /// Stores `image`'s tags unless the store already holds exactly these (a rescan that
    /// found nothing new writes no file; the listing time that counts is the object's
    /// `lastScanResult.scanTime`). Failures are logged by the cache: a lost write costs a
    /// scan.
    pub fn put_if_changed(&self, image: &str, tags: &[String], scanned_at: u64) {
        if self.tags(image).is_some_and(|stored| stored.tags == tags) {
            return;
        }
        self.put(image, tags, scanned_at);
    }

    /// Stores `image`'s tags (failures are logged by the cache: a lost write costs a scan).
    pub fn put(&self, image: &str, tags: &[String], scanned_at: u64) {
        self.cache.store(&CachedTags {
            image: image.to_string(),
            tags: tags.to_vec(),
            scanned_at,
        });
    }
}

/// `lastScanResult.revision` as Flux's default database (BadgerDB) computes it: the
/// decimal Adler-32 checksum of the JSON array of the stored tags. The same tags give the
/// same revision, and Flux's Ready message (`... with checksum <revision>`), under both.
pub fn revision(tags: &[String]) -> String {
    let json = serde_json::to_vec(tags).unwrap_or_default();
    adler32(&json).to_string()
}

fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the longest run whose sums cannot overflow u32 before the modulo.
    for chunk in bytes.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn adler32_matches_the_published_check_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long = vec![0xffu8; 100_000];
        // Reference: zlib's adler32 over 100,000 bytes of 0xff.
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &long {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&long), ((b << 16) | a) as u32);
    }

    #[test]
    fn the_revision_is_the_checksum_of_the_json_tag_list() {
        let tags = vec!["1.0.1".to_string(), "1.0.0".to_string()];
        assert_eq!(
            revision(&tags),
            adler32(br#"["1.0.1","1.0.0"]"#).to_string()
        );
        assert_ne!(revision(&tags), revision(&tags[..1]));
    }

    #[test]
    fn stored_tags_survive_a_new_store_on_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(&dir.path().join("data")).unwrap();
        store.put("127.0.0.1:5000/app", &["2.0.0".into(), "1.0.0".into()], 42);
        let again = TagStore::open(&dir.path().join("data")).unwrap();
        let entry = again.tags("127.0.0.1:5000/app").unwrap();
        assert_eq!(entry.tags, ["2.0.0", "1.0.0"]);
        assert_eq!(entry.scanned_at, 42);
        assert!(again.tags("127.0.0.1:5000/other").is_none());
        // The same tags again: the entry is left as it is.
        again.put_if_changed("127.0.0.1:5000/app", &["2.0.0".into(), "1.0.0".into()], 43);
        assert_eq!(again.tags("127.0.0.1:5000/app").unwrap().scanned_at, 42);
        again.put_if_changed("127.0.0.1:5000/app", &["3.0.0".into()], 44);
        assert_eq!(again.tags("127.0.0.1:5000/app").unwrap().tags, ["3.0.0"]);
    }
}
