//! A small YAML tree that remembers lines, so that CRD errors can say `file:line`.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

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

    /// Follows a dotted path of mapping keys.
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('.').try_fold(self, |node, key| node.get(key))
    }

    /// The scalar text, when this is a non-empty scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s, _) if !s.is_empty() && s != "~" && s != "null" => Some(s),
            _ => None,
        }
    }
}

enum Building {
    Map(Vec<(String, Node)>, usize, Option<String>),
    Seq(Vec<Node>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Building>,
    docs: Vec<Node>,
}

impl Builder {
    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Building::Seq(items, _)) => items.push(node),
            Some(Building::Map(entries, _, key)) => match key.take() {
                None => {
                    let k = match &node {
                        Node::Scalar(s, _) => s.clone(),
                        _ => String::new(),
                    };
                    *key = Some(k);
                }
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => self.push_node(Node::Scalar(value, line)),
            Event::Alias(_) => self.push_node(Node::Scalar(String::new(), line)),
            Event::MappingStart(..) => self.stack.push(Building::Map(Vec::new(), line, None)),
            Event::SequenceStart(..) => self.stack.push(Building::Seq(Vec::new(), line)),
            Event::MappingEnd | Event::SequenceEnd => {
                let node = match self.stack.pop() {
                    Some(Building::Map(entries, l, _)) => Node::Map(entries, l),
                    Some(Building::Seq(items, l)) => Node::Seq(items, l),
                    None => return,
                };
                self.push_node(node);
            }
            _ => {}
        }
    }
}

/// Parses every document of `text`; the error is `(line, message)`.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, (usize, String)> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| (e.marker().line(), e.info().to_string()))?;
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
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
    }
}
