//! Limits on hostile YAML, and a parse that cannot overflow the stack.
//!
//! yaml-rust2's `Parser::load` recurses once per nesting level (`load_node` ->
//! `load_mapping` -> `load_node`), so a file of 10,000 nested `- ` items aborts the process
//! with a stack overflow. [`read_yaml_events`] drives the same parser with a flat loop
//! instead and stops at [`MAX_YAML_DEPTH`]; it also stops a document whose aliases would
//! expand, in a loader that copies the anchored node for each alias, past
//! [`MAX_YAML_ALIAS_EXPANSION`] nodes ("billion laughs").

use crate::SetterError;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// The deepest nesting of mappings and sequences a file may have. Kubernetes manifests and
/// Helm values stay far below it; the stack of a recursive reader stays small at it.
pub const MAX_YAML_DEPTH: usize = 512;

/// The most nodes one document may have once every alias is replaced by a copy of its
/// anchored node. Counting expansion (rather than aliases) stops exponential
/// alias-of-alias documents while allowing many aliases to small anchors.
pub const MAX_YAML_ALIAS_EXPANSION: u64 = 1_000_000;

/// Counts what [`read_yaml_events`] limits.
#[derive(Default)]
struct Guard {
    depth: usize,
    /// Nodes of the current document with aliases expanded.
    nodes: u64,
    /// Expanded size of each anchor defined in the current document, by anchor id.
    anchors: std::collections::HashMap<usize, u64>,
    /// Open collections: their anchor id (0: none) and `nodes` when they started.
    open: Vec<(usize, u64)>,
}

impl Guard {
    fn observe(&mut self, ev: &Event, mark: Marker) -> Result<(), SetterError> {
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.nodes = 0;
                self.anchors.clear();
                self.open.clear();
                self.depth = 0;
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.depth += 1;
                if self.depth > MAX_YAML_DEPTH {
                    return Err(SetterError::YamlLimit {
                        line,
                        reason: format!("nested deeper than {MAX_YAML_DEPTH} levels; not read"),
                    });
                }
                self.open.push((*anchor, self.nodes));
                self.add(1, line)?;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.depth = self.depth.saturating_sub(1);
                if let Some((anchor, start)) = self.open.pop() {
                    if anchor != 0 {
                        self.anchors.insert(anchor, self.nodes - start);
                    }
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                if *anchor != 0 {
                    self.anchors.insert(*anchor, 1);
                }
                self.add(1, line)?;
            }
            Event::Alias(anchor) => {
                // `Parser::load` clears anchor names at each document; the bare event
                // stream does not, so an alias to an earlier document's anchor is caught
                // here, as `load` would have refused it.
                let Some(&size) = self.anchors.get(anchor) else {
                    // An alias inside its own anchor's node: a loader cannot expand it.
                    if self.open.iter().any(|(a, _)| a == anchor) {
                        return self.add(1, line);
                    }
                    return Err(SetterError::InvalidYaml {
                        line,
                        reason: "while parsing node, found unknown anchor".into(),
                    });
                };
                self.add(size, line)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn add(&mut self, n: u64, line: usize) -> Result<(), SetterError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_YAML_ALIAS_EXPANSION {
            return Err(SetterError::YamlLimit {
                line,
                reason: format!(
                    "aliases expand the document past {MAX_YAML_ALIAS_EXPANSION} nodes; not read"
                ),
            });
        }
        Ok(())
    }
}

/// Parses every document of `text` into `recv`, like yaml-rust2's
/// `Parser::new_from_str(text).load(recv, true)`, without recursion and within the limits.
///
/// Errors: [`SetterError::InvalidYaml`] (what `load` reports, with its line) or
/// [`SetterError::YamlLimit`] (nesting past [`MAX_YAML_DEPTH`] or aliases expanding past
/// [`MAX_YAML_ALIAS_EXPANSION`]); `recv` has seen no event past the limit. Use it in place
/// of `Parser::load` wherever the text comes from a repository.
///
/// ```
/// use tagsmith_marker_setter::{read_yaml_events, MAX_YAML_DEPTH};
/// struct Count(usize);
/// impl yaml_rust2::parser::MarkedEventReceiver for Count {
///     fn on_event(&mut self, _: yaml_rust2::Event, _: yaml_rust2::scanner::Marker) { self.0 += 1 }
/// }
/// let mut n = Count(0);
/// read_yaml_events("a: [1, 2]\n", &mut n)?;
/// assert_eq!(n.0, 11); // stream, document, mapping, a, sequence, 1, 2, and their ends
/// let deep = "- ".repeat(MAX_YAML_DEPTH + 1) + "x\n";
/// let err = read_yaml_events(&deep, &mut n).unwrap_err();
/// assert_eq!(err.code(), "yaml_limit");
/// # Ok::<(), tagsmith_marker_setter::SetterError>(())
/// ```
pub fn read_yaml_events<R: MarkedEventReceiver>(
    text: &str,
    recv: &mut R,
) -> Result<(), SetterError> {
    let mut parser = Parser::new_from_str(text);
    let mut guard = Guard::default();
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| SetterError::InvalidYaml {
            line: e.marker().line(),
            reason: crate::text::clip(e.info()).into_owned(),
        })?;
        guard.observe(&ev, mark)?;
        let end = ev == Event::StreamEnd;
        recv.on_event(ev, mark);
        if end {
            return Ok(());
        }
    }
}

/// Whether `text` stays within [`MAX_YAML_DEPTH`] and [`MAX_YAML_ALIAS_EXPANSION`]: the
/// check to run before handing repository YAML to a reader that recurses (yaml-rust2's
/// `Parser::load`, `YamlLoader`) or expands aliases. Text that fails to parse is `Ok` up
/// to the error, since a reader stops there too; only [`SetterError::YamlLimit`] is
/// returned. [`read_yaml_events`] does the same check while parsing, in one pass.
pub fn check_yaml_limits(text: &str) -> Result<(), SetterError> {
    struct Ignore;
    impl MarkedEventReceiver for Ignore {
        fn on_event(&mut self, _: Event, _: Marker) {}
    }
    match read_yaml_events(text, &mut Ignore) {
        Err(e @ SetterError::YamlLimit { .. }) => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_at_the_limit_is_read_and_past_it_is_refused() {
        let at = "- ".repeat(MAX_YAML_DEPTH) + "x\n";
        assert!(check_yaml_limits(&at).is_ok());
        let past = "- ".repeat(MAX_YAML_DEPTH + 1) + "x\n";
        match check_yaml_limits(&past) {
            Err(SetterError::YamlLimit { line, .. }) => assert_eq!(line, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ten_thousand_levels_are_refused_without_overflowing_the_stack() {
        let deep = "- ".repeat(10_000) + "x\n";
        assert_eq!(
            check_yaml_limits(&deep).map_err(|e| e.code()),
            Err("yaml_limit")
        );
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        match check_yaml_limits(&doc) {
            Err(SetterError::YamlLimit { line, reason }) => {
                assert!(line > 1, "{line}");
                assert!(reason.contains("aliases"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A few aliases to a small anchor are fine.
        assert!(check_yaml_limits("base: &b {a: 1}\nx: *b\ny: *b\n").is_ok());
    }

    #[test]
    fn an_alias_to_an_earlier_documents_anchor_does_not_parse_as_with_load() {
        let text = "a: &x 1\n---\nb: *x\n";
        struct Ignore;
        impl MarkedEventReceiver for Ignore {
            fn on_event(&mut self, _: Event, _: Marker) {}
        }
        assert!(
            yaml_rust2::YamlLoader::load_from_str(text).is_err(),
            "yaml-rust2's load refuses it"
        );
        match read_yaml_events(text, &mut Ignore) {
            Err(SetterError::InvalidYaml { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }
}
