//! The byte-exact rewrite of one file.
//!
//! yaml-rust2 parses the file into events with start positions (a character index, line and
//! column; no end). Comments are not events, so markers are found in the text: a `#` at the
//! start of a line or after a blank, outside every scalar, whose text after the leading `#`s
//! is JSON holding `"$imagepolicy"`. A marker binds, as in Flux (kyaml reads a node's line
//! comment, then its head comment), to the value scalar that ends on its line before it, or,
//! for a sequence item with no line comment, to the item on the next line when the marker is
//! the only comment line above it. Each bound scalar's exact byte span is computed from the
//! source (plain: its text; quoted: up to the closing quote) and only those bytes change.

use crate::reference::Policies;
use crate::scalar::{encode, Style};
use crate::text::{clip, clip_to, MAX_MESSAGE};
use crate::{SetterError, Warning};
use memchr::memmem;
use serde::{Deserialize, Serialize};
use std::path::Path;
use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// The JSON key of a setter marker.
pub const MARKER_KEY: &str = "$imagepolicy";

/// What a marker asks for: the whole reference, or one part of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerKind {
    /// `ns:name`: the full reference, `name:tag` (with `@digest` when the policy has one).
    Image,
    /// `ns:name:tag`: the tag only.
    Tag,
    /// `ns:name:name`: the repository name only.
    Name,
    /// `ns:name:digest`: the digest only.
    Digest,
}

/// The Kubernetes object a change was made in (the YAML document's top-level fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `apiVersion`, when the document has one.
    pub api_version: Option<String>,
    /// `kind`.
    pub kind: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
}

/// One rewritten scalar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// 1-based line of the scalar.
    pub line: usize,
    /// The value before.
    pub old_value: String,
    /// The value after.
    pub new_value: String,
    /// The policy, `namespace:name`.
    pub policy: String,
    /// The marker's setter name as Flux records it (`ns:name` or `ns:name:tag`, ...).
    pub setter: String,
    /// What the marker asked for.
    pub marker: MarkerKind,
}

/// The changes made in one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChanges {
    /// The object.
    pub object: ObjectRef,
    /// Its changes, in file order.
    pub changes: Vec<Change>,
}

/// The result of rewriting one file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOutcome {
    /// The new content, or `None` when nothing changed.
    pub new_content: Option<Vec<u8>>,
    /// What changed, per object.
    pub objects: Vec<ObjectChanges>,
    /// Markers left alone and why.
    pub warnings: Vec<Warning>,
}

/// Rewrites the marked scalars of one file's content; `path` only names it in warnings.
///
/// ```
/// use std::path::Path;
/// use tagsmith_marker_setter::{rewrite_str, Policies};
/// let policies = Policies::from_map([("flux-system:app", "reg.example.com/team/app:1.4.2")]).unwrap();
/// let yaml = b"spec:\n  image: reg.example.com/team/app:1.2.3 # {\"$imagepolicy\": \"flux-system:app\"}\n";
/// let out = rewrite_str(yaml, Path::new("deploy.yaml"), &policies);
/// assert_eq!(
///     String::from_utf8(out.new_content.unwrap()).unwrap(),
///     "spec:\n  image: reg.example.com/team/app:1.4.2 # {\"$imagepolicy\": \"flux-system:app\"}\n"
/// );
/// ```
pub fn rewrite_str(content: &[u8], path: &Path, policies: &Policies) -> FileOutcome {
    let mut outcome = FileOutcome::default();
    if memmem::find(content, MARKER_KEY.as_bytes()).is_none() {
        return outcome;
    }
    let display = path.to_string_lossy().replace('\\', "/");
    let warn = |line: usize, code: &str, message: String| Warning {
        path: display.clone(),
        line,
        code: code.to_string(),
        message: clip_to(&message, MAX_MESSAGE).into_owned(),
    };
    let bom = if content.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let Ok(text) = std::str::from_utf8(&content[bom..]) else {
        outcome.warnings.push(warn(
            0,
            "not_utf8",
            "file is not UTF-8; markers in it are left unchanged".into(),
        ));
        return outcome;
    };
    let mut events = Events::default();
    // Not yaml-rust2's recursive `load`: nesting and aliases are capped (a stranger's
    // 10,000-level file overflowed the stack).
    match crate::read_yaml_events(text, &mut events) {
        Ok(()) => {}
        Err(SetterError::YamlLimit { line, reason }) => {
            outcome.warnings.push(warn(
                line,
                "yaml_limit",
                format!("{reason}; file left unchanged"),
            ));
            return outcome;
        }
        Err(err) => {
            let (line, reason) = match &err {
                SetterError::InvalidYaml { line, reason } => (*line, reason.clone()),
                other => (0, other.to_string()),
            };
            outcome.warnings.push(warn(
                line,
                "parse_error",
                format!("YAML does not parse ({reason}); file left unchanged"),
            ));
            return outcome;
        }
    }
    let lines = LineIndex::new(text);
    let mut edits: Vec<Edit> = Vec::new();

    for marker in find_markers(text, &lines, &events) {
        let (policy, kind) = match parse_setter(&marker.setter) {
            Some(p) => p,
            None => {
                outcome.warnings.push(warn(
                    marker.line,
                    "invalid_marker",
                    format!(
                        "marker {:?} is not NAMESPACE:NAME[:tag|:name|:digest]",
                        clip(&marker.setter)
                    ),
                ));
                continue;
            }
        };
        let target = match bind(&marker, &events, &lines, text) {
            Ok(t) => t,
            Err((code, message)) => {
                outcome.warnings.push(warn(marker.line, code, message));
                continue;
            }
        };
        let Some(reference) = policies.get(&policy) else {
            outcome.warnings.push(warn(
                marker.line,
                "unknown_policy",
                format!(
                    "marker names policy {:?}, which is not given; value left unchanged",
                    clip(&policy)
                ),
            ));
            continue;
        };
        let new_value = match kind {
            MarkerKind::Image => Some(reference.to_string()),
            MarkerKind::Tag => reference.tag().map(str::to_string),
            MarkerKind::Name => Some(reference.name().to_string()),
            MarkerKind::Digest => reference.digest().map(str::to_string),
        };
        let Some(new_value) = new_value else {
            outcome.warnings.push(warn(
                marker.line,
                "missing_part",
                format!(
                    "policy {:?} ({}) has no {kind:?} to write",
                    clip(&policy),
                    clip(&reference.to_string())
                )
                .to_lowercase(),
            ));
            continue;
        };
        let scalar = &events.scalars[target];
        if scalar.value == new_value {
            continue;
        }
        let (start, end, style) = match span(scalar, &lines, text) {
            Ok(s) => s,
            Err((code, message)) => {
                outcome.warnings.push(warn(marker.line, code, message));
                continue;
            }
        };
        edits.push(Edit {
            start: bom + start,
            end: bom + end,
            bytes: encode(&new_value, style),
            doc: scalar.doc,
            change: Change {
                line: scalar.line,
                old_value: scalar.value.clone(),
                new_value,
                policy,
                setter: marker.setter.clone(),
                marker: kind,
            },
        });
    }
    if edits.is_empty() {
        return outcome;
    }
    edits.sort_by_key(|e| e.start);
    edits.dedup_by_key(|e| e.start);
    let mut out = Vec::with_capacity(content.len() + 64);
    let mut at = 0;
    for edit in &edits {
        out.extend_from_slice(&content[at..edit.start]);
        out.extend_from_slice(edit.bytes.as_bytes());
        at = edit.end;
    }
    out.extend_from_slice(&content[at..]);
    for edit in edits {
        let object = events.objects.get(edit.doc).cloned().unwrap_or_default();
        match outcome.objects.iter_mut().find(|o| o.object == object) {
            Some(existing) => existing.changes.push(edit.change),
            None => outcome.objects.push(ObjectChanges {
                object,
                changes: vec![edit.change],
            }),
        }
    }
    outcome.new_content = Some(out);
    outcome
}

struct Edit {
    start: usize,
    end: usize,
    bytes: String,
    doc: usize,
    change: Change,
}

/// Splits `ns:name[:suffix]` into the policy key and the marker kind.
fn parse_setter(setter: &str) -> Option<(String, MarkerKind)> {
    let parts: Vec<&str> = setter.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let kind = match parts.as_slice() {
        [_, _] => MarkerKind::Image,
        [_, _, "tag"] => MarkerKind::Tag,
        [_, _, "name"] => MarkerKind::Name,
        [_, _, "digest"] => MarkerKind::Digest,
        _ => return None,
    };
    Some((format!("{}:{}", parts[0], parts[1]), kind))
}

/// Where a node sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Item,
    Root,
}

#[derive(Debug, Clone)]
struct ScalarEvent {
    line: usize,
    col: usize,
    value: String,
    style: TScalarStyle,
    doc: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Scalar(usize),
    Alias,
    Collection,
}

/// A node's start, in event order.
#[derive(Debug, Clone, Copy)]
struct NodeStart {
    line: usize,
    col: usize,
    kind: NodeKind,
    role: Role,
}

enum Frame {
    Map {
        expect_key: bool,
        key: Option<String>,
    },
    Seq,
}

#[derive(Default)]
struct Events {
    scalars: Vec<ScalarEvent>,
    nodes: Vec<NodeStart>,
    objects: Vec<ObjectRef>,
    stack: Vec<Frame>,
    doc: usize,
}

impl Events {
    fn role(&self) -> Role {
        match self.stack.last() {
            Some(Frame::Map {
                expect_key: true, ..
            }) => Role::Key,
            Some(Frame::Map { .. }) => Role::Value,
            Some(Frame::Seq) => Role::Item,
            None => Role::Root,
        }
    }

    /// After a whole node: a map switches between expecting a key and a value.
    fn node_done(&mut self, key_text: Option<&str>) {
        if let Some(Frame::Map { expect_key, key }) = self.stack.last_mut() {
            if *expect_key {
                *key = key_text.map(str::to_string);
            }
            *expect_key = !*expect_key;
        }
    }

    /// The keys leading to the current position (`["metadata"]` inside metadata).
    fn record_object_field(&mut self, value: &str) {
        // Only `kind`, `apiVersion` and `metadata.*` matter: no need to look deeper.
        if self.stack.len() > 2 {
            return;
        }
        let keys: Vec<Option<&str>> = self
            .stack
            .iter()
            .map(|f| match f {
                Frame::Map { key, .. } => key.as_deref(),
                Frame::Seq => None,
            })
            .collect();
        let object = &mut self.objects[self.doc];
        match keys.as_slice() {
            [Some("apiVersion")] => object.api_version = Some(value.to_string()),
            [Some("kind")] => object.kind = Some(value.to_string()),
            [Some("metadata"), Some("name")] => object.name = Some(value.to_string()),
            [Some("metadata"), Some("namespace")] => object.namespace = Some(value.to_string()),
            _ => {}
        }
    }
}

impl MarkedEventReceiver for Events {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let role = self.role();
        match ev {
            Event::DocumentStart => {
                self.objects.push(ObjectRef::default());
                self.doc = self.objects.len() - 1;
                self.stack.clear();
            }
            Event::Scalar(value, style, _, _) => {
                if role == Role::Value {
                    self.record_object_field(&value);
                }
                self.scalars.push(ScalarEvent {
                    line: mark.line(),
                    col: mark.col(),
                    value: value.clone(),
                    style,
                    doc: self.doc,
                });
                self.nodes.push(NodeStart {
                    line: mark.line(),
                    col: mark.col(),
                    kind: NodeKind::Scalar(self.scalars.len() - 1),
                    role,
                });
                self.node_done(Some(&value));
            }
            Event::Alias(_) => {
                self.nodes.push(NodeStart {
                    line: mark.line(),
                    col: mark.col(),
                    kind: NodeKind::Alias,
                    role,
                });
                self.node_done(None);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                self.nodes.push(NodeStart {
                    line: mark.line(),
                    col: mark.col(),
                    kind: NodeKind::Collection,
                    role,
                });
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map {
                        expect_key: true,
                        key: None,
                    }
                } else {
                    Frame::Seq
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.node_done(None);
            }
            _ => {}
        }
    }
}

/// Byte offsets of line starts, and char-column to byte conversion.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Line starts as YAML (and yaml-rust2, whose line numbers these must match) breaks
    /// lines: [`crate::yaml_lines`]. Counting `\n` alone put a marker after a lone `\r` on
    /// the wrong scalar (found by the fuzzer).
    fn new(text: &str) -> Self {
        let base = text.as_ptr() as usize;
        let starts = crate::yaml_lines(text)
            .iter()
            .map(|line| line.as_ptr() as usize - base)
            .collect();
        LineIndex { starts }
    }

    /// The text of 1-based `line`, without its line break.
    fn line<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let Some(&start) = self.starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self.starts.get(line).map_or(text.len(), |&e| e - 1);
        text[start..end.max(start)].trim_end_matches('\r')
    }

    /// Byte offset of (1-based line, 0-based char column).
    fn offset(&self, text: &str, line: usize, col: usize) -> Option<usize> {
        let start = *self.starts.get(line.checked_sub(1)?)?;
        let rest = &text[start..];
        if rest.is_char_boundary(col) && rest.as_bytes()[..col.min(rest.len())].is_ascii() {
            return Some(start + col);
        }
        rest.char_indices().nth(col).map(|(i, _)| start + i)
    }
}

struct MarkerComment {
    line: usize,
    /// Byte offset of the `#` within the line.
    hash: usize,
    setter: String,
    /// Whether the comment is the only thing on its line.
    full_line: bool,
}

/// Marker comments: on lines holding the key, a `#` after a blank (or at the line start)
/// that lies outside every scalar, whose text parses as marker JSON.
fn find_markers(text: &str, lines: &LineIndex, events: &Events) -> Vec<MarkerComment> {
    let finder = memmem::Finder::new(MARKER_KEY);
    let mut markers = Vec::new();
    for (i, _) in lines.starts.iter().enumerate() {
        let line_no = i + 1;
        let line = lines.line(text, line_no);
        if finder.find(line.as_bytes()).is_none() {
            continue;
        }
        let bytes = line.as_bytes();
        for (pos, _) in line.match_indices('#') {
            if pos > 0 && !matches!(bytes[pos - 1], b' ' | b'\t') {
                continue;
            }
            if inside_scalar(events, lines, text, line_no, pos) {
                continue;
            }
            if let Some(setter) = parse_marker_comment(&line[pos..]) {
                markers.push(MarkerComment {
                    line: line_no,
                    hash: pos,
                    setter,
                    full_line: line[..pos].trim().is_empty(),
                });
            }
            break;
        }
    }
    markers
}

/// Flux (kyaml `fieldmeta`) strips the leading `#`s and decodes the rest as a JSON object of
/// strings (`map[string]string`): other string keys are tolerated, a non-string value anywhere
/// makes it an ordinary comment, and an empty setter name is no marker.
fn parse_marker_comment(comment: &str) -> Option<String> {
    let json = comment.trim_start_matches('#');
    let map: std::collections::HashMap<String, String> = serde_json::from_str(json).ok()?;
    map.get(MARKER_KEY).filter(|s| !s.is_empty()).cloned()
}

/// Whether byte `pos` of `line_no` falls inside a quoted scalar that starts on that line
/// (a `#` there is text, not a comment).
fn inside_scalar(
    events: &Events,
    lines: &LineIndex,
    text: &str,
    line_no: usize,
    pos: usize,
) -> bool {
    let line_start = lines.starts[line_no - 1];
    on_line(&events.scalars, line_no, |s| s.line)
        .iter()
        .any(|s| match span(s, lines, text) {
            Ok((start, end, _)) => start < line_start + pos && line_start + pos < end,
            Err(_) => false,
        })
}

/// The items starting on `line`: events come in document order, so their lines never
/// decrease and a binary search finds the run.
fn on_line<T>(items: &[T], line: usize, line_of: impl Fn(&T) -> usize) -> &[T] {
    let from = items.partition_point(|t| line_of(t) < line);
    let to = items.partition_point(|t| line_of(t) <= line);
    &items[from..to.max(from)]
}

type Refusal = (&'static str, String);

/// The scalar a marker applies to, or why it applies to none.
fn bind(
    marker: &MarkerComment,
    events: &Events,
    lines: &LineIndex,
    text: &str,
) -> Result<usize, Refusal> {
    let line_start = lines.starts[marker.line - 1];
    if marker.full_line {
        // Head comment: the next line must hold a sequence item scalar with no line
        // comment of its own, and the marker must be the only comment line above it.
        let above = lines.line(text, marker.line.wrapping_sub(1));
        let single = marker.line == 1 || !above.trim_start().starts_with('#');
        // The first node on the next line, past the sequence that holds it.
        let item = on_line(&events.nodes, marker.line + 1, |n| n.line)
            .iter()
            .find(|n| !(n.kind == NodeKind::Collection && n.role != Role::Item));
        return match item {
            Some(NodeStart {
                kind: NodeKind::Scalar(i),
                role: Role::Item,
                ..
            }) if single => {
                let own = lines.line(text, marker.line + 1);
                let has_line_comment = span(&events.scalars[*i], lines, text)
                    .map(|(_, end, _)| {
                        let rest = &text[end..];
                        rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())].contains('#')
                    })
                    .unwrap_or(false);
                if has_line_comment {
                    Err((
                        "marker_unattached",
                        format!(
                            "the item below has its own comment ({:?}), which Flux reads instead",
                            clip(own)
                        ),
                    ))
                } else {
                    Ok(*i)
                }
            }
            _ => Err((
                "marker_unattached",
                "marker comment stands alone and is not above a sequence item value".into(),
            )),
        };
    }
    // Line comment: the last node starting on this line before the `#`.
    let first = events.nodes.partition_point(|n| n.line < marker.line);
    let same_line = on_line(&events.nodes, marker.line, |n| n.line);
    let node = same_line.iter().enumerate().rfind(|(_, n)| {
        lines
            .offset(text, n.line, n.col)
            .is_some_and(|o| o < line_start + marker.hash)
    });
    let node = node.map(|(i, n)| (first + i, n));
    let Some((index, node)) = node else {
        return Err((
            "multiline_scalar",
            "marker follows a value that starts on an earlier line; left unchanged".into(),
        ));
    };
    match (node.kind, node.role) {
        (NodeKind::Alias, _) => Err((
            "marker_on_alias",
            "marker is on an alias (*ref); change the anchor instead".into(),
        )),
        (NodeKind::Collection, _) => Err((
            "marker_on_collection",
            "marker is on a mapping or sequence, not a scalar value".into(),
        )),
        (NodeKind::Scalar(_), Role::Key) => {
            let next = events.nodes.get(index + 1);
            let block_scalar = next.is_some_and(|n| match n.kind {
                NodeKind::Scalar(j) => matches!(
                    events.scalars[j].style,
                    TScalarStyle::Literal | TScalarStyle::Folded
                ),
                _ => false,
            });
            if block_scalar {
                Err((
                    "marker_on_block_scalar",
                    "marker is on a block scalar (| or >); left unchanged".into(),
                ))
            } else if next.is_some_and(|n| n.kind == NodeKind::Collection) {
                Err((
                    "marker_on_collection",
                    "marker is on a key whose value is a mapping or sequence".into(),
                ))
            } else {
                Err((
                    "marker_on_key",
                    "marker is on a key, not on its value".into(),
                ))
            }
        }
        (NodeKind::Scalar(i), Role::Value | Role::Item) => {
            let scalar = &events.scalars[i];
            if matches!(scalar.style, TScalarStyle::Literal | TScalarStyle::Folded) {
                return Err((
                    "marker_on_block_scalar",
                    "marker is on a block scalar (| or >); left unchanged".into(),
                ));
            }
            // A `}` or `]` between the value and the comment closes a flow collection:
            // kyaml (yaml.v3) gives the comment to that collection, so Flux sets nothing
            // inside it (`image: {tag: 1.0.0} # marker`); after a `,` it stays the value's.
            if let Ok((_, end, _)) = span(scalar, lines, text) {
                let before_hash = text.get(end..line_start + marker.hash).unwrap_or("");
                if before_hash.contains(['}', ']']) {
                    return Err((
                        "marker_on_collection",
                        "marker follows the end of a flow mapping or sequence ({...} or [...]), which Flux binds it to; nothing inside is set".into(),
                    ));
                }
            }
            Ok(i)
        }
        (NodeKind::Scalar(_), Role::Root) => Err((
            "marker_unattached",
            "marker is on a document-level scalar".into(),
        )),
    }
}

/// The scalar's exact byte span in `text` and its style; single-line scalars only.
fn span(s: &ScalarEvent, lines: &LineIndex, text: &str) -> Result<(usize, usize, Style), Refusal> {
    let multiline = || {
        (
            "multiline_scalar",
            "marked value spans several lines; left unchanged".to_string(),
        )
    };
    let start = lines.offset(text, s.line, s.col).ok_or_else(multiline)?;
    let bytes = text.as_bytes();
    let (end, style) = match s.style {
        TScalarStyle::Plain => {
            let end = start + s.value.len();
            if text.get(start..end) != Some(s.value.as_str()) {
                return Err(multiline());
            }
            (end, Style::Plain)
        }
        TScalarStyle::SingleQuoted => {
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => break (i + 1, Style::SingleQuoted),
                    Some(_) => i += 1,
                    None => return Err(multiline()),
                }
            }
        }
        TScalarStyle::DoubleQuoted => {
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    Some(b'\\') => i += 2,
                    Some(b'"') => break (i + 1, Style::DoubleQuoted),
                    Some(_) => i += 1,
                    None => return Err(multiline()),
                }
            }
        }
        TScalarStyle::Literal | TScalarStyle::Folded => {
            return Err((
                "marker_on_block_scalar",
                "marker is on a block scalar (| or >); left unchanged".into(),
            ))
        }
    };
    if text[start..end].contains(['\n', '\r']) {
        return Err(multiline());
    }
    Ok((start, end, style))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies() -> Policies {
        Policies::from_map([
            ("flux-system:app", "reg.example.com/team/app:1.4.2"),
            (
                "flux-system:pinned",
                "ghcr.io/org/api:2.0.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
            ("flux-system:build", "reg.example.com/team/app:42"),
        ])
        .unwrap()
    }

    fn run(yaml: &str) -> (String, FileOutcome) {
        let out = rewrite_str(yaml.as_bytes(), Path::new("f.yaml"), &policies());
        let text = out.new_content.as_ref().map_or_else(
            || yaml.to_string(),
            |c| String::from_utf8(c.clone()).unwrap(),
        );
        (text, out)
    }

    const M: &str = r#"# {"$imagepolicy": "flux-system:app"}"#;

    #[test]
    fn lone_carriage_returns_break_lines_as_in_yaml() {
        // Old Mac line ends, and a stray `\r` before markers: lines are counted as YAML
        // counts them, so each marker binds its own scalar and the change names its line.
        let yaml = format!(
            "x: 1\rlist:\r  {M}\r  - reg.example.com/team/app:1.0.0\r  - keep:1.0.0\ra: reg.example.com/team/app:0.9.0 {M}\rb: keep:2.0.0 # plain\r"
        );
        let (text, out) = run(&yaml);
        assert_eq!(
            text,
            yaml.replace("app:1.0.0", "app:1.4.2")
                .replace("app:0.9.0", "app:1.4.2")
        );
        let lines: Vec<usize> = out.objects[0].changes.iter().map(|c| c.line).collect();
        assert_eq!(lines, [4, 6]);
        // The fuzzer's case: `\r` inside a line before a marked sequence item.
        let yaml = format!(
            "list:\rist:\r\n  - image: \"web:1.0.0\"\n    name: web\n  - image: \"reg.example.com/team/app:1.4.2\" {M}\n"
        );
        let out = rewrite_str(yaml.as_bytes(), Path::new("f.yaml"), &policies());
        assert!(
            out.new_content.is_none(),
            "nothing to change: {:?}",
            out.objects
        );
    }

    #[test]
    fn full_tag_name_and_digest_markers() {
        let yaml = format!(
            "a: reg.example.com/team/app:1.0.0 {M}\nb: 1.0.0 # {{\"$imagepolicy\": \"flux-system:app:tag\"}}\nc: old # {{\"$imagepolicy\": \"flux-system:app:name\"}}\nd: x # {{\"$imagepolicy\": \"flux-system:pinned:digest\"}}\ne: x # {{\"$imagepolicy\": \"flux-system:pinned\"}}\n"
        );
        let (text, out) = run(&yaml);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("a: reg.example.com/team/app:1.4.2 #"));
        assert!(lines[1].starts_with("b: 1.4.2 #"));
        assert!(lines[2].starts_with("c: reg.example.com/team/app #"));
        assert!(lines[3].starts_with("d: sha256:0123"));
        assert!(lines[4].starts_with("e: ghcr.io/org/api:2.0.0@sha256:0123"));
        let changes = &out.objects[0].changes;
        assert_eq!(changes.len(), 5);
        assert_eq!(changes[1].setter, "flux-system:app:tag");
        assert_eq!(changes[1].marker, MarkerKind::Tag);
        assert_eq!(changes[1].line, 2);
    }

    #[test]
    fn quotes_are_kept_and_numbers_get_quoted() {
        let yaml = "a: 'x' # {\"$imagepolicy\": \"flux-system:app:tag\"}\nb: \"x\" # {\"$imagepolicy\": \"flux-system:app:tag\"}\nc: x # {\"$imagepolicy\": \"flux-system:build:tag\"}\n";
        let (text, _) = run(yaml);
        assert_eq!(
            text,
            "a: '1.4.2' # {\"$imagepolicy\": \"flux-system:app:tag\"}\nb: \"1.4.2\" # {\"$imagepolicy\": \"flux-system:app:tag\"}\nc: \"42\" # {\"$imagepolicy\": \"flux-system:build:tag\"}\n"
        );
    }

    #[test]
    fn whitespace_variants_of_the_marker() {
        for comment in [
            r#"#{"$imagepolicy":"flux-system:app"}"#,
            r#"##   {  "$imagepolicy" :  "flux-system:app" }   "#,
            "# {\"$imagepolicy\": \"flux-system:app\"}\t",
        ] {
            let (text, out) = run(&format!("image: old {comment}\n"));
            assert!(
                text.starts_with("image: reg.example.com/team/app:1.4.2 "),
                "{comment}: {text}"
            );
            assert_eq!(out.objects.len(), 1);
        }
    }

    #[test]
    fn marker_json_is_a_map_of_strings_as_in_flux() {
        let (text, _) =
            run("image: old # {\"$imagepolicy\": \"flux-system:app\", \"note\": \"x\"}\n");
        assert!(text.starts_with("image: reg.example.com/team/app:1.4.2 #"));
        for comment in [
            r#"# {"$imagepolicy": "flux-system:app", "n": 1}"#,
            r#"# {"$imagepolicy": ""}"#,
            r#"# $imagepolicy: flux-system:app"#,
        ] {
            let yaml = format!("image: old {comment}\n");
            let (text, out) = run(&yaml);
            assert_eq!(text, yaml, "{comment}");
            assert!(out.warnings.is_empty(), "{comment}: {:?}", out.warnings);
        }
    }

    #[test]
    fn sequence_item_head_comment() {
        let yaml = format!("images:\n  {M}\n  - old\n  - other\n");
        let (text, _) = run(&yaml);
        assert_eq!(
            text,
            format!("images:\n  {M}\n  - reg.example.com/team/app:1.4.2\n  - other\n")
        );
        // Two comment lines above: Flux reads them as one head comment, which is not JSON.
        let yaml = format!("images:\n  # note\n  {M}\n  - old\n");
        let (text, out) = run(&yaml);
        assert_eq!(text, yaml);
        assert_eq!(out.warnings[0].code, "marker_unattached");
    }

    #[test]
    fn misplaced_markers_warn_and_change_nothing() {
        for (yaml, code) in [
            (format!("image: {M}\n  nested: x\n"), "marker_on_collection"),
            (format!("image: | {M}\n  text\n"), "marker_on_block_scalar"),
            (format!("a: &x old\nb: *x {M}\n"), "marker_on_alias"),
            (format!("{M}\nkey: value\n"), "marker_unattached"),
            (
                "image: old # {\"$imagepolicy\": \"other:policy\"}\n".to_string(),
                "unknown_policy",
            ),
            (
                "image: old # {\"$imagepolicy\": \"bad\"}\n".to_string(),
                "invalid_marker",
            ),
            (format!("a: [b\n{M}\n"), "parse_error"),
        ] {
            let (text, out) = run(&yaml);
            assert_eq!(text, yaml, "{code}");
            assert!(out.new_content.is_none());
            assert_eq!(out.warnings.len(), 1, "{yaml}: {:?}", out.warnings);
            assert_eq!(out.warnings[0].code, code, "{yaml}");
            assert!(out.warnings[0].line > 0 || code == "not_utf8");
        }
    }

    #[test]
    fn hash_inside_a_quoted_value_is_not_a_comment() {
        let yaml = "a: \"x # {\\\"$imagepolicy\\\": \\\"flux-system:app\\\"}\"\n";
        let (text, out) = run(yaml);
        assert_eq!(text, yaml);
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn every_other_byte_is_kept() {
        let yaml = format!(
            "\u{FEFF}# top comment\r\n---\r\napiVersion: apps/v1\r\nkind: Deployment\r\nmetadata:\r\n  name: web   \r\n  namespace: prod\r\nspec:\r\n  containers:\r\n    - name: app\r\n      image: reg.example.com/team/app:1.0.0 {M}\r\n      args: [\"a\",   'b']\r\n\r\n...\r\n---\r\nother: doc\r\n"
        );
        let (text, out) = run(&yaml);
        assert_eq!(text, yaml.replace("app:1.0.0", "app:1.4.2"));
        let object = &out.objects[0].object;
        assert_eq!(object.kind.as_deref(), Some("Deployment"));
        assert_eq!(object.name.as_deref(), Some("web"));
        assert_eq!(object.namespace.as_deref(), Some("prod"));
        assert_eq!(object.api_version.as_deref(), Some("apps/v1"));
    }

    #[test]
    fn unicode_before_the_value_is_handled() {
        let yaml = format!("# héllo wörld\nname: ünïcode\nimage: old {M}\n");
        let (text, _) = run(&yaml);
        assert_eq!(
            text,
            yaml.replace("image: old", "image: reg.example.com/team/app:1.4.2")
        );
    }

    #[test]
    fn unchanged_values_produce_no_content() {
        let yaml = format!("image: reg.example.com/team/app:1.4.2 {M}\n");
        let (_, out) = run(&yaml);
        assert!(out.new_content.is_none());
        assert!(out.objects.is_empty());
    }

    #[test]
    fn non_utf8_files_are_reported() {
        let mut bytes = b"a: \xff\nimage: old ".to_vec();
        bytes.extend_from_slice(M.as_bytes());
        let out = rewrite_str(&bytes, Path::new("bin.yaml"), &policies());
        assert!(out.new_content.is_none());
        assert_eq!(out.warnings[0].code, "not_utf8");
    }
}
