//! A small YAML tree that remembers lines, so that CRD errors can say `file:line`.
//!
//! Repository YAML is untrusted. yaml-rust2's `Parser::load` recurses once per nesting
//! level and overflows the stack on a few thousand levels, so the parser is driven event by
//! event here and the tree is built on an explicit stack, with budgets checked before going
//! deeper: [`MAX_DEPTH`] levels, and [`MAX_NODES`] nodes per document including those that
//! aliases copy (a "billion laughs" document expands exponentially). Anchors, aliases and
//! `<<` merge keys resolve as Kubernetes' YAML reader resolves them.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, Parser};

/// The deepest nesting read; Kubernetes objects stay far below it.
pub const MAX_DEPTH: usize = 128;
/// The most nodes one document may hold, counting the copies aliases make.
pub const MAX_NODES: usize = 200_000;

/// A YAML node with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar (its text) or null.
    Scalar(String, usize),
    /// A mapping, keys in order.
    Map(Vec<(String, Node)>, usize),
    /// A sequence.
    Seq(Vec<Node>, usize),
}

impl Node {
    /// The line the node starts on.
    pub fn line(&self) -> usize {
        match self {
            Node::Scalar(_, l) | Node::Map(_, l) | Node::Seq(_, l) => *l,
        }
    }

    /// The value at `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries, _) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a dotted path of mapping keys, where a key may index a sequence:
    /// `spec.accessFrom.namespaceSelectors[0].matchLabels`.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('.').try_fold(self, |node, segment| {
            let Some((key, index)) = segment.strip_suffix(']').and_then(|s| s.split_once('['))
            else {
                return node.get(segment);
            };
            match node.get(key)? {
                Node::Seq(items, _) => items.get(index.parse::<usize>().ok()?),
                _ => None,
            }
        })
    }

    /// The scalar text, when this is a non-empty scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s, _) if !s.is_empty() && s != "~" && s != "null" => Some(s),
            _ => None,
        }
    }

    /// Sets `metadata.namespace` of an object (a kustomization's `namespace:`).
    pub fn set_namespace(&mut self, namespace: &str) {
        let Node::Map(entries, line) = self else {
            return;
        };
        let line = *line;
        let metadata = match entries.iter_mut().find(|(k, _)| k == "metadata") {
            Some((_, node)) => node,
            None => {
                entries.push(("metadata".into(), Node::Map(Vec::new(), line)));
                match entries.last_mut() {
                    Some((_, node)) => node,
                    None => return,
                }
            }
        };
        if let Node::Map(fields, at) = metadata {
            let at = *at;
            match fields.iter_mut().find(|(k, _)| k == "namespace") {
                Some((_, value)) => *value = Node::Scalar(namespace.into(), value.line()),
                None => fields.push(("namespace".into(), Node::Scalar(namespace.into(), at))),
            }
        }
    }

    fn count(&self) -> usize {
        // Iterative: a copied subtree may be as deep as MAX_DEPTH, and counting must not
        // recurse either.
        let mut stack = vec![self];
        let mut n = 0;
        while let Some(node) = stack.pop() {
            n += 1;
            match node {
                Node::Scalar(..) => {}
                Node::Map(entries, _) => stack.extend(entries.iter().map(|(_, v)| v)),
                Node::Seq(items, _) => stack.extend(items.iter()),
            }
        }
        n
    }
}

enum Building {
    Map {
        entries: Vec<(String, Node)>,
        line: usize,
        key: Option<String>,
        anchor: usize,
        /// Entries from `<<` merge keys, applied under the mapping's own keys at the end.
        merged: Vec<(String, Node)>,
    },
    Seq {
        items: Vec<Node>,
        line: usize,
        anchor: usize,
    },
}

/// Why a text is not read: `(line, message)`.
pub type YamlError = (usize, String);

struct Builder {
    stack: Vec<Building>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

impl Builder {
    fn push_node(&mut self, node: Node, anchor: usize, line: usize) -> Result<(), YamlError> {
        self.nodes += node.count();
        if self.nodes > MAX_NODES {
            return Err((
                line,
                format!("the document holds more than {MAX_NODES} nodes (aliases included); refusing to expand it"),
            ));
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Building::Seq { items, .. }) => items.push(node),
            Some(Building::Map {
                entries,
                key,
                merged,
                ..
            }) => match key.take() {
                None => {
                    let k = match &node {
                        Node::Scalar(s, _) => s.clone(),
                        _ => String::new(),
                    };
                    *key = Some(k);
                }
                Some(k) if k == "<<" => match node {
                    Node::Map(more, _) => merged.extend(more),
                    Node::Seq(maps, _) => {
                        for map in maps {
                            if let Node::Map(more, _) = map {
                                merged.extend(more);
                            }
                        }
                    }
                    Node::Scalar(..) => {
                        return Err((
                            line,
                            "a << merge key needs a mapping or a list of mappings".into(),
                        ))
                    }
                },
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }

    fn end(&mut self, line: usize) -> Result<(), YamlError> {
        let (node, anchor) = match self.stack.pop() {
            Some(Building::Map {
                mut entries,
                line,
                anchor,
                merged,
                ..
            }) => {
                // Merged keys never override the mapping's own, and the first merged
                // mapping wins over later ones (YAML 1.1 merge).
                for (k, v) in merged {
                    if !entries.iter().any(|(key, _)| *key == k) {
                        entries.push((k, v));
                    }
                }
                (Node::Map(entries, line), anchor)
            }
            Some(Building::Seq {
                items,
                line,
                anchor,
            }) => (Node::Seq(items, line), anchor),
            None => return Ok(()),
        };
        // The node's own count was taken as its children arrived.
        self.nodes = self.nodes.saturating_sub(node.count());
        self.push_node(node, anchor, line)
    }

    fn open(&mut self, building: Building, line: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err((
                line,
                format!("nested deeper than {MAX_DEPTH} levels; refusing to read further"),
            ));
        }
        self.stack.push(building);
        Ok(())
    }
}

/// Parses every document of `text` within the budgets above.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder {
        stack: Vec::new(),
        docs: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|e| (e.marker().line(), e.info().to_string()))?;
        let line = mark.line();
        match event {
            Event::StreamEnd => break,
            Event::DocumentEnd => {
                builder.anchors.clear();
                builder.nodes = 0;
            }
            Event::Scalar(value, _, anchor, _) => {
                builder.push_node(Node::Scalar(value, line), anchor, line)?
            }
            Event::Alias(id) => {
                let node = builder.anchors.get(&id).cloned().ok_or_else(|| {
                    (
                        line,
                        "an alias names an anchor that is not defined before it".to_string(),
                    )
                })?;
                builder.push_node(node, 0, line)?;
            }
            Event::MappingStart(anchor, _) => builder.open(
                Building::Map {
                    entries: Vec::new(),
                    line,
                    key: None,
                    anchor,
                    merged: Vec::new(),
                },
                line,
            )?,
            Event::SequenceStart(anchor, _) => builder.open(
                Building::Seq {
                    items: Vec::new(),
                    line,
                    anchor,
                },
                line,
            )?,
            Event::MappingEnd | Event::SequenceEnd => builder.end(line)?,
            _ => {}
        }
    }
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_and_paths() {
        let docs =
            parse_documents("a: 1\n---\nspec:\n  policy:\n    semver:\n      range: '>=1'\n")
                .unwrap();
        assert_eq!(docs.len(), 2);
        let range = docs[1].at("spec.policy.semver.range").unwrap();
        assert_eq!((range.as_str(), range.line()), (Some(">=1"), 6));
        assert!(parse_documents("a: [b\n").is_err());
        let list = &parse_documents("a:\n  - b: 1\n  - b: 2\n").unwrap()[0];
        assert_eq!(list.at("a[1].b").and_then(Node::as_str), Some("2"));
        assert_eq!(list.at("a[2].b"), None);
    }

    #[test]
    fn anchors_aliases_and_merge_keys_resolve_as_kubernetes_reads_them() {
        let text = "base: &base\n  image: reg/app\n  interval: 5m\nspec:\n  <<: *base\n  interval: 1m\nname: &n app\nother: *n\n";
        let doc = &parse_documents(text).unwrap()[0];
        assert_eq!(doc.at("spec.image").and_then(Node::as_str), Some("reg/app"));
        // The mapping's own key wins over the merged one.
        assert_eq!(doc.at("spec.interval").and_then(Node::as_str), Some("1m"));
        assert_eq!(doc.at("other").and_then(Node::as_str), Some("app"));
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let block: String = (0..10_000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect();
        let (line, message) = parse_documents(&block).unwrap_err();
        assert!(message.contains("nested deeper than"), "{message}");
        assert_eq!(line, MAX_DEPTH + 1);
        let seq: String = (0..10_000)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        assert!(parse_documents(&seq).is_err());
        let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse_documents(&flow).is_err());
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let (_, message) = parse_documents(&text).unwrap_err();
        assert!(message.contains("more than"), "{message}");
    }
}
