//! An offline [`TagSource`]: a file mapping images to their tags (and optionally digests),
//! so the whole tool runs without a registry (the README's demo, tests, air-gapped CI).
//!
//! ```yaml
//! reg.example.com/team/checkout:
//!   - 1.0.0
//!   - 1.4.2
//! reg.example.com/team/builds:
//!   tags: [2025.01.02-3f2a1bc, 2025.03.01-9d8e7f6]
//!   digests:
//!     2025.03.01-9d8e7f6: sha256:...
//! ```

use crate::{ScanError, TagSource};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

#[derive(Debug, Clone, Default)]
struct Entry {
    tags: Vec<String>,
    digests: BTreeMap<String, String>,
}

/// Tags read from a YAML or JSON snapshot file.
#[derive(Debug, Clone, Default)]
pub struct SnapshotTagSource {
    images: BTreeMap<String, Entry>,
}

impl SnapshotTagSource {
    /// Reads a snapshot file (YAML, of which JSON is a subset).
    pub fn from_path(path: &Path) -> Result<Self, ScanError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScanError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| ScanError::Config {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses snapshot text (also available as `text.parse::<SnapshotTagSource>()`).
    ///
    /// ```
    /// use tagsmith_registry_scan::SnapshotTagSource;
    /// let json: SnapshotTagSource = r#"{"ghcr.io/org/app": {"tags": ["1.0.0"], "digests": {"1.0.0": "sha256:ab"}}}"#
    ///     .parse()?;
    /// let yaml = SnapshotTagSource::from_text("nginx:\n  - '1.10'\n  - 1.9\n")?;
    /// # let _ = (json, yaml);
    /// # Ok::<(), tagsmith_registry_scan::ScanError>(())
    /// ```
    pub fn from_text(text: &str) -> Result<Self, ScanError> {
        Self::parse(text).map_err(|message| ScanError::Config {
            path: "<snapshot>".into(),
            message,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let docs = YamlLoader::load_from_str(text)
            .map_err(|e| format!("line {}: {}", e.marker().line(), e.info()))?;
        let Some(Yaml::Hash(map)) = docs.into_iter().next() else {
            return Err("expected a mapping of image -> tags".into());
        };
        let mut images = BTreeMap::new();
        for (k, v) in map {
            let image = scalar(&k).ok_or("image names must be strings")?;
            let entry = match v {
                Yaml::Array(tags) => Entry {
                    tags: tags.iter().filter_map(scalar).collect(),
                    digests: BTreeMap::new(),
                },
                Yaml::Hash(h) => {
                    let tags = match h.get(&Yaml::String("tags".into())) {
                        Some(Yaml::Array(tags)) => tags.iter().filter_map(scalar).collect(),
                        _ => return Err(format!("{image}: expected `tags: [...]`")),
                    };
                    let mut digests = BTreeMap::new();
                    if let Some(Yaml::Hash(d)) = h.get(&Yaml::String("digests".into())) {
                        for (t, dg) in d {
                            if let (Some(t), Some(dg)) = (scalar(t), scalar(dg)) {
                                digests.insert(t, dg);
                            }
                        }
                    }
                    Entry { tags, digests }
                }
                _ => return Err(format!("{image}: expected a list of tags")),
            };
            images.insert(normalize(&image), entry);
        }
        Ok(SnapshotTagSource { images })
    }

    /// Adds or replaces an image's tags (for programs that build snapshots in memory).
    pub fn insert(&mut self, image: &str, tags: Vec<String>) {
        self.images.insert(
            normalize(image),
            Entry {
                tags,
                digests: BTreeMap::new(),
            },
        );
    }
}

impl std::str::FromStr for SnapshotTagSource {
    type Err = ScanError;

    /// Same as [`SnapshotTagSource::from_text`].
    fn from_str(text: &str) -> Result<Self, ScanError> {
        Self::from_text(text)
    }
}

/// Tags such as `1.10` read as floats in YAML; keep their text.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn normalize(image: &str) -> String {
    crate::oci::parse_reference(image)
        .map(|r| format!("{}/{}", r.resolve_registry(), r.repository()))
        .unwrap_or_else(|_| image.to_string())
}

#[async_trait]
impl TagSource for SnapshotTagSource {
    async fn list_tags(&self, image: &str) -> Result<Vec<String>, ScanError> {
        self.images
            .get(&normalize(image))
            .map(|e| e.tags.clone())
            .ok_or_else(|| ScanError::NotInSnapshot {
                image: image.to_string(),
            })
    }

    async fn resolve_digest(&self, image: &str, tag: &str) -> Result<String, ScanError> {
        let entry = self
            .images
            .get(&normalize(image))
            .ok_or_else(|| ScanError::NotInSnapshot {
                image: image.to_string(),
            })?;
        entry
            .digests
            .get(tag)
            .cloned()
            .ok_or_else(|| ScanError::NotFound {
                registry: "snapshot".into(),
                image: format!("{image}:{tag} (no digest recorded)"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn json_and_yaml_forms_with_digests_and_unquoted_numbers() {
        let json: SnapshotTagSource = r#"{"ghcr.io/org/app": {"tags": ["1.0.0", "1.1.0"], "digests": {"1.1.0": "sha256:ab"}}}"#
            .parse()
            .expect("json");
        assert_eq!(
            block(json.list_tags("ghcr.io/org/app")).expect("tags"),
            ["1.0.0", "1.1.0"]
        );
        assert_eq!(
            block(json.resolve_digest("ghcr.io/org/app", "1.1.0")).expect("digest"),
            "sha256:ab"
        );
        let err = block(json.resolve_digest("ghcr.io/org/app", "1.0.0")).expect_err("none");
        assert_eq!(err.code(), "not_found");

        // Unquoted YAML numbers keep their text: 1.10 stays "1.10", not 1.1.
        let yaml =
            SnapshotTagSource::from_text("nginx:\n  - 1.10\n  - 1.9\n  - 7\n").expect("yaml");
        assert_eq!(
            block(yaml.list_tags("index.docker.io/library/nginx")).expect("tags"),
            ["1.10", "1.9", "7"]
        );
        let err = block(yaml.list_tags("ghcr.io/nginx")).expect_err("absent");
        assert_eq!(err.code(), "not_in_snapshot");
        assert!(err.to_string().contains("ghcr.io/nginx"), "{err}");
    }

    #[test]
    fn malformed_snapshots_are_config_errors() {
        for (text, wanted) in [
            ("- a\n- b\n", "mapping"),
            ("app: 3\n", "list of tags"),
            ("app: {digests: {}}\n", "tags: [...]"),
            ("app: [1, 2\n", "line"),
        ] {
            let err = SnapshotTagSource::from_text(text).expect_err(text);
            assert_eq!(err.code(), "config", "{text}");
            assert!(err.to_string().contains(wanted), "{text}: {err}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("absent.yaml");
        let err = SnapshotTagSource::from_path(&missing).expect_err("missing");
        assert!(err.to_string().contains("absent.yaml"), "{err}");
    }
}
