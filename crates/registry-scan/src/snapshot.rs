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

    /// Parses snapshot text.
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
