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

use crate::error::clip;
use crate::{ScanError, TagSource};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::rc::Rc;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// The deepest nesting a snapshot may use; its own shape needs three levels (image map,
/// entry map, tag list). yaml-rust2's `YamlLoader` recurses once per level and overflowed
/// the stack at 10 000.
pub const MAX_SNAPSHOT_DEPTH: usize = 64;

/// The most nodes aliases (`*name`) may copy in one snapshot, all aliases together: enough
/// to share a long tag list between many images, far from a "billion laughs" bomb, which
/// `YamlLoader` expands in full.
pub const MAX_SNAPSHOT_ALIAS_NODES: usize = 1_000_000;

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
    /// Reads a snapshot file (YAML, of which JSON is a subset); it must be UTF-8.
    pub fn from_path(path: &Path) -> Result<Self, ScanError> {
        let config_error = |message: String| ScanError::Config {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| config_error(e.to_string()))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            config_error(format!("line {line}: not UTF-8 (byte {at})"))
        })?;
        Self::parse(text).map_err(config_error)
    }

    /// Parses snapshot text (also available as `text.parse::<SnapshotTagSource>()`).
    ///
    /// Plain scalars keep their text (`1.10` stays `1.10`, `007` stays `007`); `~`/`null`
    /// entries are skipped. Nesting deeper than [`MAX_SNAPSHOT_DEPTH`] and aliases copying
    /// more than [`MAX_SNAPSHOT_ALIAS_NODES`] nodes are refused with the line.
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
        let Some(root) = load_first_document(text)? else {
            return Err("expected a mapping of image -> tags".into());
        };
        let Node::Map(map, _) = root.as_ref() else {
            return Err(format!(
                "line {}: expected a mapping of image -> tags",
                root.line()
            ));
        };
        let mut images = BTreeMap::new();
        for (k, v) in map {
            let image = k
                .text()
                .ok_or_else(|| format!("line {}: image names must be strings", k.line()))?
                .to_string();
            let shown = clip(&image).into_owned();
            let entry = match v.as_ref() {
                Node::Seq(tags, line) => Entry {
                    tags: tag_list(tags, &shown, *line)?,
                    digests: BTreeMap::new(),
                },
                Node::Map(fields, line) => {
                    let field = |name: &str| {
                        fields
                            .iter()
                            .find(|(k, _)| k.text() == Some(name))
                            .map(|(_, v)| v.as_ref())
                    };
                    let tags = match field("tags") {
                        Some(Node::Seq(tags, line)) => tag_list(tags, &shown, *line)?,
                        _ => return Err(format!("line {line}: {shown}: expected `tags: [...]`")),
                    };
                    let mut digests = BTreeMap::new();
                    if let Some(Node::Map(d, _)) = field("digests") {
                        for (t, dg) in d {
                            if let (Some(t), Some(dg)) = (t.text(), dg.text()) {
                                digests.insert(t.to_string(), dg.to_string());
                            }
                        }
                    }
                    Entry { tags, digests }
                }
                other => {
                    return Err(format!(
                        "line {}: {shown}: expected a list of tags",
                        other.line()
                    ))
                }
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

/// The tags of one list: scalars kept as written, nulls skipped, nothing nested.
fn tag_list(items: &[Rc<Node>], image: &str, line: usize) -> Result<Vec<String>, String> {
    let mut tags = Vec::with_capacity(items.len());
    for item in items {
        match item.as_ref() {
            Node::Scalar(text, _) => tags.push(text.clone()),
            Node::Null(_) => {}
            _ => {
                return Err(format!(
                    "line {}: {image}: tags must be strings (the list starts on line {line})",
                    item.line()
                ))
            }
        }
    }
    Ok(tags)
}

/// A YAML node, with the line it starts on (1-based). Children are shared, so that an
/// alias costs a pointer, not a copy.
#[derive(Debug)]
enum Node {
    Null(usize),
    Scalar(String, usize),
    Seq(Vec<Rc<Node>>, usize),
    Map(Vec<(Rc<Node>, Rc<Node>)>, usize),
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Null(l) | Node::Scalar(_, l) | Node::Seq(_, l) | Node::Map(_, l) => *l,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Node::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
}

/// A collection being built, with its size in nodes (for aliases that copy it).
struct Open {
    node: Node,
    anchor: usize,
    /// A mapping's key waiting for its value.
    key: Option<Rc<Node>>,
    size: usize,
}

/// Builds the first document from yaml-rust2's event stream, one event at a time.
///
/// `YamlLoader` would do this with a recursive descent (one stack frame per nesting level:
/// deep input overflowed the stack) and copy every alias in full (a "billion laughs" took
/// gigabytes). Here nesting is a heap stack checked before each level is opened, and an
/// alias shares the anchored node and is charged its size (what reading the snapshot
/// would copy out of it) before it is added. Later documents are read (so that syntax
/// errors still surface) but not built.
fn load_first_document(text: &str) -> Result<Option<Rc<Node>>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, (Rc<Node>, usize)> = HashMap::new();
    let mut alias_nodes = 0usize;
    let mut root: Option<Rc<Node>> = None;
    let mut documents = 0usize;
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| format!("line {}: {}", e.marker().line(), e.info()))?;
        let line = mark.line();
        let (node, size, anchor) = match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                continue;
            }
            _ if documents > 1 => continue,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => continue,
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_SNAPSHOT_DEPTH {
                    return Err(format!(
                        "line {line}: nested deeper than {MAX_SNAPSHOT_DEPTH} levels"
                    ));
                }
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq(Vec::new(), line)
                } else {
                    Node::Map(Vec::new(), line)
                };
                stack.push(Open {
                    node,
                    anchor,
                    key: None,
                    size: 1,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = stack.pop() else {
                    return Err(format!("line {line}: unbalanced collection end"));
                };
                if open.key.is_some() {
                    return Err(format!("line {line}: a mapping key has no value"));
                }
                (Rc::new(open.node), open.size, open.anchor)
            }
            Event::Scalar(value, style, anchor, _) => {
                let null = style == TScalarStyle::Plain
                    && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL");
                let node = Rc::new(if null {
                    Node::Null(line)
                } else {
                    Node::Scalar(value, line)
                });
                (node, 1, anchor)
            }
            Event::Alias(id) => {
                let Some((node, size)) = anchors.get(&id) else {
                    return Err(format!(
                        "line {line}: alias to an unknown or unfinished anchor"
                    ));
                };
                alias_nodes = alias_nodes.saturating_add(*size);
                if alias_nodes > MAX_SNAPSHOT_ALIAS_NODES {
                    return Err(format!(
                        "line {line}: aliases copy more than {MAX_SNAPSHOT_ALIAS_NODES} nodes \
                         (a YAML alias bomb?)"
                    ));
                }
                (Rc::clone(node), *size, 0)
            }
        };
        if anchor != 0 {
            anchors.insert(anchor, (Rc::clone(&node), size));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(parent) => {
                parent.size = parent.size.saturating_add(size);
                match (&mut parent.node, parent.key.take()) {
                    (Node::Seq(items, _), _) => items.push(node),
                    (Node::Map(entries, _), Some(key)) => entries.push((key, node)),
                    (Node::Map(_, _), None) => parent.key = Some(node),
                    _ => return Err(format!("line {line}: unexpected node")),
                }
            }
        }
    }
    Ok(root)
}

/// The key an image is kept under: `nginx` = `index.docker.io/library/nginx`.
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

    fn refused_file(bytes: &[u8]) -> (String, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snapshot.yaml");
        std::fs::write(&path, bytes).expect("write");
        let err = SnapshotTagSource::from_path(&path).expect_err("refused");
        assert_eq!(err.code(), "config");
        (err.to_string(), path.display().to_string())
    }

    #[test]
    fn a_billion_laughs_snapshot_is_refused_with_the_line() {
        // Nine levels of nine aliases each: 9^9 copies if expanded.
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let (err, path) = refused_file(text.as_bytes());
        assert!(err.starts_with(&path), "{err}");
        assert!(err.contains("aliases copy more than"), "{err}");
        // 9^7 = 4.8 million copies: the limit is passed on the line of `g`.
        assert!(err.contains("line 7:"), "{err}");
    }

    #[test]
    fn a_snapshot_nested_ten_thousand_levels_deep_is_refused_not_a_stack_overflow() {
        let text = format!("{}1\n", "- ".repeat(10_000));
        let (err, path) = refused_file(text.as_bytes());
        assert!(err.starts_with(&path), "{err}");
        assert!(
            err.contains(&format!(
                "line 1: nested deeper than {MAX_SNAPSHOT_DEPTH} levels"
            )),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_in_a_snapshot_is_an_error_naming_the_line() {
        let (err, path) = refused_file(b"reg.example.com/app:\n  - 1.0.\xff\n");
        assert!(err.starts_with(&path), "{err}");
        assert!(err.contains("line 2: not UTF-8 (byte 29)"), "{err}");
    }

    #[test]
    fn unquoted_tags_keep_their_text_exactly() {
        let yaml = SnapshotTagSource::from_text("app: [007, 0x1F, 1_000, +5, 1.10, true, ~]\n")
            .expect("yaml");
        assert_eq!(
            block(yaml.list_tags("app")).expect("tags"),
            ["007", "0x1F", "1_000", "+5", "1.10", "true"]
        );
    }

    #[test]
    fn an_alias_shares_a_tag_list_between_images() {
        let yaml = SnapshotTagSource::from_text(
            "reg.example.com/a: &shared [1.0.0, 1.1.0]\nreg.example.com/b: *shared\nreg.example.com/c: {tags: *shared}\n",
        )
        .expect("yaml");
        for image in [
            "reg.example.com/a",
            "reg.example.com/b",
            "reg.example.com/c",
        ] {
            assert_eq!(
                block(yaml.list_tags(image)).expect(image),
                ["1.0.0", "1.1.0"]
            );
        }
    }

    #[test]
    fn nested_lists_in_a_tag_list_are_refused_with_the_line() {
        let err =
            SnapshotTagSource::from_text("app:\n  - 1.0.0\n  - [2.0.0]\n").expect_err("nested");
        assert!(
            err.to_string()
                .contains("line 3: app: tags must be strings"),
            "{err}"
        );
    }

    #[test]
    fn a_megabyte_image_name_gives_a_short_error() {
        let text = format!("{}: 3\n", "a".repeat(1 << 20));
        let err = SnapshotTagSource::from_text(&text).expect_err("not a list");
        assert!(
            err.to_string().len() < 1024,
            "{} bytes",
            err.to_string().len()
        );
    }
}
