//! Compiled policies: filter, extract, order, choose, explain.

use crate::constraint::Constraints;
use crate::numeric::parse_go_float;
use crate::spec::{Order, PolicyKind, PolicySpec};
use crate::stream::{Pass, Ranking};
use crate::version::Version;
use crate::PolicyError;
use regex::{Regex, RegexSet};
use serde::Serialize;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

/// Flux's default `ImageRepository.spec.exclusionList`: cosign signature tags.
pub const DEFAULT_EXCLUSION_LIST: &[&str] = &[r"^.*\.sig$"];

/// How many distinct compiled exclusion lists [`Exclusions::new`] keeps.
const REMEMBERED_EXCLUSIONS: usize = 256;

/// Tags to drop before any policy sees them (`ImageRepository.spec.exclusionList`).
///
/// ```
/// use tagsmith_image_policy_core::Exclusions;
/// let flux = Exclusions::flux_default();
/// assert!(flux.is_excluded("sha256-abc.sig"));
/// let (kept, dropped) = flux.retain(vec!["1.0.0".into(), "sha256-abc.sig".into()]);
/// assert_eq!((kept, dropped), (vec!["1.0.0".to_string()], 1));
/// ```
#[derive(Debug, Clone)]
pub struct Exclusions {
    set: Option<RegexSet>,
    patterns: Vec<String>,
}

impl Exclusions {
    /// Compiles the patterns; the error names the first one that does not compile.
    ///
    /// Compiled lists are remembered (at most [`REMEMBERED_EXCLUSIONS`] of them, per
    /// process): a controller reads every ImageRepository's list on every reconciliation,
    /// and most repositories share one (Flux's default), whose compilation costs more than
    /// a loopback listing.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PolicyError> {
        use std::sync::{Mutex, OnceLock};
        static COMPILED: OnceLock<Mutex<HashMap<Vec<String>, Exclusions>>> = OnceLock::new();
        let patterns: Vec<String> = patterns.iter().map(|p| p.as_ref().to_string()).collect();
        let compiled = COMPILED.get_or_init(|| Mutex::new(HashMap::new()));
        if let Some(found) = compiled.lock().ok().and_then(|m| m.get(&patterns).cloned()) {
            return Ok(found);
        }
        let exclusions = Self::compile(patterns)?;
        if let Ok(mut map) = compiled.lock() {
            if map.len() >= REMEMBERED_EXCLUSIONS {
                map.clear();
            }
            map.insert(exclusions.patterns.clone(), exclusions.clone());
        }
        Ok(exclusions)
    }

    fn compile(patterns: Vec<String>) -> Result<Self, PolicyError> {
        for (i, pattern) in patterns.iter().enumerate() {
            compile(pattern, &format!("exclusionList[{i}]"))?;
        }
        let set = if patterns.is_empty() {
            None
        } else {
            Some(
                RegexSet::new(&patterns).map_err(|e| PolicyError::InvalidRegex {
                    field: "exclusionList".into(),
                    pattern: patterns.join(", "),
                    reason: e.to_string(),
                })?,
            )
        };
        Ok(Exclusions { set, patterns })
    }

    /// Flux's default list, [`DEFAULT_EXCLUSION_LIST`].
    pub fn flux_default() -> Self {
        match Self::new(DEFAULT_EXCLUSION_LIST) {
            Ok(exclusions) => exclusions,
            Err(err) => unreachable!("the default exclusion list compiles: {err}"),
        }
    }

    /// Excludes nothing.
    pub fn none() -> Self {
        Exclusions {
            set: None,
            patterns: Vec::new(),
        }
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether any pattern matches `tag`.
    pub fn is_excluded(&self, tag: &str) -> bool {
        self.set.as_ref().is_some_and(|set| set.is_match(tag))
    }

    /// Keeps the tags no pattern matches, in order; returns them and how many were dropped.
    pub fn retain(&self, mut tags: Vec<String>) -> (Vec<String>, usize) {
        let before = tags.len();
        tags.retain(|t| !self.is_excluded(t));
        let dropped = before - tags.len();
        (tags, dropped)
    }
}

impl Default for Exclusions {
    fn default() -> Self {
        Self::flux_default()
    }
}

/// Compiles a pattern as Flux does: what Go's `regexp.Compile` refuses is refused with
/// Go's message (the `regex` crate takes some of it, such as `a**`), then the `regex` crate
/// compiles what Go takes.
fn compile(pattern: &str, field: &str) -> Result<Regex, PolicyError> {
    if let Some(reason) = crate::go_syntax::go_syntax_error(pattern) {
        return Err(PolicyError::InvalidRegex {
            field: field.to_string(),
            pattern: pattern.to_string(),
            reason,
        });
    }
    Regex::new(pattern).map_err(|e| PolicyError::InvalidRegex {
        field: field.to_string(),
        pattern: pattern.to_string(),
        reason: one_line_regex_error(&e),
    })
}

/// `regex` prints syntax errors as a multi-line picture; errors here are one line.
fn one_line_regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text);
    last.trim().trim_start_matches("error: ").to_string()
}

#[derive(Debug, Clone)]
enum Rule {
    Semver(Constraints),
    Alphabetical(Order),
    Numerical(Order),
}

#[derive(Debug, Clone)]
pub(crate) struct Filter {
    pub(crate) regex: Regex,
    pub(crate) extract: Option<Template>,
    /// The extracted value is always a prefix of the tag: the template is one group that
    /// opens right after a leading `^` (as in `^(?P<ts>[0-9.]+)-[a-f0-9]+$` + `$ts`), so
    /// the value sorts at or below the tag itself.
    pub(crate) value_is_prefix: bool,
    /// The extracted value is the rest of the tag after what precedes the group: see
    /// [`prefix_before_trailing_group`].
    pub(crate) value_after: Option<ValueAfter>,
}

/// A search for the part of the pattern before its trailing `(?P<v>.*)`.
#[derive(Debug, Clone)]
pub(crate) struct ValueAfter {
    prefix: regex_automata::meta::Regex,
    /// The group is `.` (not `(?s:.)`): it stops at a newline.
    stops_at_newline: bool,
}

impl Filter {
    /// The value `template` extracts from `text`, `None` where the pattern does not match.
    #[inline]
    pub(crate) fn extract<'t>(
        &self,
        template: &Template,
        text: &'t str,
        captures: &mut regex::CaptureLocations,
    ) -> Option<Cow<'t, str>> {
        if let Some(after) = &self.value_after {
            let Some(prefix) = after.prefix.find(text) else {
                // The trailing group matches anything, so no prefix means no match.
                return None;
            };
            let rest = &text[prefix.end()..];
            if !(after.stops_at_newline && rest.contains('\n')) {
                return Some(Cow::Borrowed(rest));
            }
        }
        self.regex.captures_read(captures, text)?;
        Some(template.expand(text, captures))
    }
}

/// When capture group `group` is the last part of `pattern` (bar a final `$`) and is a
/// greedy `.*` (as in Flux's numerical example `^main-[a-fA-F0-9]+-(?P<ts>.*)`), the
/// group always matches, so the pattern matches where the part before the group does, and
/// the group is the rest of the tag from the end of that part's leftmost-first match.
/// Finding that end is a lazy-DFA search, without the one-pass capture engine that costs
/// three times as much. A tag with a newline in that rest (which `.` stops at) takes the
/// capture path.
fn prefix_before_trailing_group(pattern: &str, group: usize) -> Option<ValueAfter> {
    use regex_syntax::hir::{Class, Hir, HirKind, Look};
    let hir = regex_syntax::parse(pattern).ok()?;
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let mut parts = parts.as_slice();
    if let [rest @ .., last] = parts {
        if matches!(last.kind(), HirKind::Look(Look::End)) {
            parts = rest;
        }
    }
    let [prefix @ .., last] = parts else {
        return None;
    };
    let HirKind::Capture(capture) = last.kind() else {
        return None;
    };
    if capture.index as usize != group {
        return None;
    }
    let HirKind::Repetition(repeat) = capture.sub.kind() else {
        return None;
    };
    if !(repeat.min == 0 && repeat.max.is_none() && repeat.greedy) {
        return None;
    }
    let HirKind::Class(Class::Unicode(class)) = repeat.sub.kind() else {
        return None;
    };
    let ranges: Vec<(char, char)> = class
        .ranges()
        .iter()
        .map(|r| (r.start(), r.end()))
        .collect();
    let stops_at_newline = if ranges == [('\0', char::MAX)] {
        false
    } else if ranges == [('\0', '\t'), ('\u{b}', char::MAX)] {
        true
    } else {
        return None;
    };
    let prefix = regex_automata::meta::Regex::builder()
        .build_from_hir(&Hir::concat(prefix.to_vec()))
        .ok()?;
    Some(ValueAfter {
        prefix,
        stops_at_newline,
    })
}

/// Whether capture group `group` of `pattern` starts at the beginning of the text in every
/// match: the pattern is `^`, then that group, then anything, at the top level (not under
/// an alternation or a repetition, where the group could capture a later piece).
fn group_starts_the_text(pattern: &str, group: usize) -> bool {
    use regex_syntax::hir::{HirKind, Look};
    let Ok(hir) = regex_syntax::parse(pattern) else {
        return false;
    };
    let HirKind::Concat(parts) = hir.kind() else {
        return false;
    };
    match parts.as_slice() {
        [first, second, ..] => {
            matches!(first.kind(), HirKind::Look(Look::Start))
                && matches!(second.kind(), HirKind::Capture(c) if c.index as usize == group)
        }
        _ => false,
    }
}

/// A compiled `ImagePolicy`: build once, select many times.
///
/// ```
/// use tagsmith_image_policy_core::{ImagePolicy, PolicySpec};
/// let policy = ImagePolicy::new(&PolicySpec::semver(">=1.0.0 <2.0.0")).unwrap();
/// let tags = ["0.9.0", "1.2.0", "v1.10.3", "2.0.0", "1.11.0-rc.1", "latest"];
/// assert_eq!(policy.select(&tags).unwrap(), "v1.10.3");
/// ```
#[derive(Debug, Clone)]
pub struct ImagePolicy {
    spec: PolicySpec,
    rule: Rule,
    filter: Option<Filter>,
}

/// One tag in the ordered candidate list of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The tag as written in the registry.
    pub tag: String,
    /// The value the policy ordered (the extracted value, or the tag).
    pub value: String,
}

/// What happened to the tags on the way to the choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Tags given.
    pub seen: usize,
    /// Tags dropped by the exclusion list.
    pub excluded: usize,
    /// Tags that did not match `filterTags.pattern`.
    pub filtered_out: usize,
    /// Tags that share an extracted value with a later tag (Flux keeps the later one).
    pub duplicates: usize,
    /// Values the policy could not read (not a version for semver, not a number for
    /// numerical when skipping).
    pub unparseable: usize,
    /// Versions outside the semver range.
    pub out_of_range: usize,
    /// Values left to order.
    pub candidates: usize,
}

/// Why a tag was chosen: counts and the best candidates in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// The chosen tag, as written.
    pub latest: String,
    /// The value that won (the extracted value, or the tag).
    pub latest_value: String,
    /// The policy, described.
    pub policy: String,
    /// What happened to the tags.
    pub counts: Counts,
    /// The best candidates, latest first.
    pub top: Vec<Candidate>,
}

/// A value the policy orders, with the position of the tag that carries it.
struct Entry<'t> {
    value: Cow<'t, str>,
    tag: usize,
}

impl ImagePolicy {
    /// Compiles a spec; invalid ranges, regexes and orders are errors here.
    pub fn new(spec: &PolicySpec) -> Result<Self, PolicyError> {
        let rule = match &spec.kind {
            PolicyKind::Semver { range } => Rule::Semver(Constraints::parse(range)?),
            PolicyKind::Alphabetical { order } => Rule::Alphabetical(*order),
            PolicyKind::Numerical { order } => Rule::Numerical(*order),
        };
        let filter = match &spec.filter_tags {
            None => None,
            Some(f) => {
                // Flux applies the filter whenever filterTags is set; an absent pattern is
                // the empty expression, which matches every tag.
                let regex = compile(f.pattern.as_deref().unwrap_or(""), "filterTags.pattern")?;
                let extract = f
                    .extract
                    .as_deref()
                    .filter(|e| !e.is_empty())
                    .map(|e| Template::compile(e, &regex));
                let value_is_prefix = match extract.as_ref().map(|t| t.segments.as_slice()) {
                    Some([Segment::Group(Some(group))]) => {
                        group_starts_the_text(regex.as_str(), *group)
                    }
                    _ => false,
                };
                let value_after = match extract.as_ref().map(|t| t.segments.as_slice()) {
                    Some([Segment::Group(Some(group))]) => {
                        prefix_before_trailing_group(regex.as_str(), *group)
                    }
                    _ => None,
                };
                Some(Filter {
                    regex,
                    extract,
                    value_is_prefix,
                    value_after,
                })
            }
        };
        Ok(ImagePolicy {
            spec: spec.clone(),
            rule,
            filter,
        })
    }

    /// The spec this policy was compiled from.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// Chooses the latest tag and returns it as written.
    ///
    /// One pass with no candidate list, on several threads for long lists; where that
    /// pass cannot be sure (see `stream.rs`), the same list-based path as
    /// [`explain`](Self::explain) decides, so the answer and errors are always that one's.
    pub fn select<S: AsRef<str> + Sync>(&self, tags: &[S]) -> Result<String, PolicyError> {
        match self.pass().select(tags) {
            Some(winner) => Ok(tags[winner].as_ref().to_string()),
            None => self.select_listed(tags),
        }
    }

    /// The one-pass selection of this policy.
    pub(crate) fn pass(&self) -> Pass<'_> {
        Pass {
            ranking: match &self.rule {
                Rule::Semver(range) => Ranking::Semver(range),
                Rule::Alphabetical(order) => Ranking::Alphabetical(*order),
                Rule::Numerical(order) => Ranking::Numerical {
                    order: *order,
                    skip_non_numeric: self.spec.skip_non_numeric,
                },
            },
            filter: self.filter.as_ref(),
        }
    }

    /// Selection through the candidate list, as `explain` does it.
    pub(crate) fn select_listed<S: AsRef<str>>(&self, tags: &[S]) -> Result<String, PolicyError> {
        let mut counts = Counts::default();
        let entries = self.entries(tags, &mut counts)?;
        let versions = self.versions_in_range(&entries, &mut counts);
        let winner = self.choose(&entries, &versions, &mut counts, tags)?;
        Ok(tags[entries[winner].tag].as_ref().to_string())
    }

    /// Chooses like [`select`](Self::select) and explains: counts, and the `top_n` best
    /// candidates in order.
    pub fn explain<S: AsRef<str>>(
        &self,
        tags: &[S],
        top_n: usize,
    ) -> Result<Explanation, PolicyError> {
        self.explain_inner(tags, top_n, 0)
    }

    /// Drops excluded tags first, then explains; `counts.excluded` says how many.
    pub fn explain_excluding<S: AsRef<str>>(
        &self,
        tags: &[S],
        exclusions: &Exclusions,
        top_n: usize,
    ) -> Result<Explanation, PolicyError> {
        let kept: Vec<&str> = tags
            .iter()
            .map(AsRef::as_ref)
            .filter(|t| !exclusions.is_excluded(t))
            .collect();
        let excluded = tags.len() - kept.len();
        if kept.is_empty() && excluded > 0 {
            return Err(PolicyError::NoMatch {
                policy: self.spec.kind.to_string(),
                reason: format!("all {excluded} tags are excluded by the exclusion list"),
            });
        }
        let mut explanation = self.explain_inner(&kept, top_n, excluded)?;
        explanation.counts.seen += excluded;
        Ok(explanation)
    }

    fn explain_inner<S: AsRef<str>>(
        &self,
        tags: &[S],
        top_n: usize,
        excluded: usize,
    ) -> Result<Explanation, PolicyError> {
        let mut counts = Counts {
            excluded,
            ..Counts::default()
        };
        let entries = self.entries(tags, &mut counts)?;
        let versions = self.versions_in_range(&entries, &mut counts);
        let winner = self.choose(&entries, &versions, &mut counts, tags)?;
        let top = self.ranked(&entries, versions, top_n, tags);
        Ok(Explanation {
            latest: tags[entries[winner].tag].as_ref().to_string(),
            latest_value: entries[winner].value.to_string(),
            policy: self.describe(),
            counts,
            top,
        })
    }

    fn describe(&self) -> String {
        let mut text = self.spec.kind.to_string();
        if let Some(f) = &self.spec.filter_tags {
            if let Some(p) = &f.pattern {
                text.push_str(&format!(", pattern {p:?}"));
            }
            if let Some(e) = &f.extract {
                text.push_str(&format!(", extract {e:?}"));
            }
        }
        text
    }

    /// Applies the filter: the values to order, in input order. With `extract`, tags that
    /// extract to the same value collapse to the last of them, as Flux's map does.
    fn entries<'t, S: AsRef<str>>(
        &self,
        tags: &'t [S],
        counts: &mut Counts,
    ) -> Result<Vec<Entry<'t>>, PolicyError> {
        if tags.is_empty() {
            return Err(PolicyError::EmptyTags);
        }
        counts.seen = tags.len();
        let Some(filter) = &self.filter else {
            return Ok(tags
                .iter()
                .enumerate()
                .map(|(tag, t)| Entry {
                    value: Cow::Borrowed(t.as_ref()),
                    tag,
                })
                .collect());
        };
        let mut entries: Vec<Entry<'t>> = Vec::new();
        match &filter.extract {
            None => {
                for (tag, t) in tags.iter().enumerate() {
                    if filter.regex.is_match(t.as_ref()) {
                        entries.push(Entry {
                            value: Cow::Borrowed(t.as_ref()),
                            tag,
                        });
                    }
                }
            }
            Some(template) => {
                // foldhash: several times faster than SipHash on short tags, and seeded per
                // map, so a registry cannot pick tags that collide.
                let mut positions: HashMap<Cow<'t, str>, usize, foldhash::fast::RandomState> =
                    HashMap::with_capacity_and_hasher(tags.len(), Default::default());
                let mut captures = filter.regex.capture_locations();
                for (tag, t) in tags.iter().enumerate() {
                    let Some(value) = filter.extract(template, t.as_ref(), &mut captures) else {
                        continue;
                    };
                    match positions.get(&value) {
                        Some(&at) => {
                            // Same value as an earlier tag: Flux's map keeps the later tag.
                            entries[at].tag = tag;
                            counts.duplicates += 1;
                        }
                        None => {
                            positions.insert(value.clone(), entries.len());
                            entries.push(Entry { value, tag });
                        }
                    }
                }
            }
        }
        counts.filtered_out = tags.len() - entries.len() - counts.duplicates;
        if entries.is_empty() {
            return Err(PolicyError::NoMatch {
                policy: self.describe(),
                reason: format!("none of the {} tags matches the pattern", tags.len()),
            });
        }
        Ok(entries)
    }

    /// For a semver policy, the entries whose value is a version in range, with their
    /// index, counting the others; empty for the other policies. Parsed once for both
    /// `choose` and `ranked`.
    fn versions_in_range<'e>(
        &self,
        entries: &'e [Entry<'_>],
        counts: &mut Counts,
    ) -> Vec<(usize, Version<'e>)> {
        let Rule::Semver(range) = &self.rule else {
            return Vec::new();
        };
        let mut versions = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let Some(v) = Version::parse_flux(&entry.value) else {
                counts.unparseable += 1;
                continue;
            };
            if !range.check(&v) {
                counts.out_of_range += 1;
                continue;
            }
            versions.push((i, v));
        }
        versions
    }

    /// Index into `entries` of the latest value, with Flux's tie rules: semver keeps the
    /// first of equal versions (`versions` from `versions_in_range`), numerical the last
    /// of equal numbers.
    fn choose<S: AsRef<str>>(
        &self,
        entries: &[Entry<'_>],
        versions: &[(usize, Version<'_>)],
        counts: &mut Counts,
        tags: &[S],
    ) -> Result<usize, PolicyError> {
        let winner = match &self.rule {
            Rule::Semver(_) => {
                counts.candidates = versions.len();
                let mut best: Option<&(usize, Version<'_>)> = None;
                for candidate in versions {
                    if best.is_none_or(|(_, b)| candidate.1.compare(b) == Ordering::Greater) {
                        best = Some(candidate);
                    }
                }
                best.map(|(i, _)| *i)
            }
            Rule::Alphabetical(order) => {
                counts.candidates = entries.len();
                let mut best: Option<usize> = None;
                for (i, entry) in entries.iter().enumerate() {
                    let better = best.is_none_or(|b| {
                        let ord = entry.value.as_bytes().cmp(entries[b].value.as_bytes());
                        match order {
                            Order::Asc => ord == Ordering::Greater,
                            Order::Desc => ord == Ordering::Less,
                        }
                    });
                    if better {
                        best = Some(i);
                    }
                }
                best
            }
            Rule::Numerical(order) => {
                // Flux's loop, kept as is: each value replaces the latest unless it is
                // strictly worse, so equal numbers resolve to the later tag and a NaN
                // (which compares false) takes over.
                let mut best: Option<(usize, f64)> = None;
                for (i, entry) in entries.iter().enumerate() {
                    let Some(cv) = parse_go_float(&entry.value) else {
                        if self.spec.skip_non_numeric {
                            counts.unparseable += 1;
                            continue;
                        }
                        return Err(PolicyError::NonNumericTag {
                            tag: tags[entry.tag].as_ref().to_string(),
                        });
                    };
                    counts.candidates += 1;
                    let worse = best.is_some_and(|(_, pv)| match order {
                        Order::Asc => cv < pv,
                        Order::Desc => cv > pv,
                    });
                    if !worse {
                        best = Some((i, cv));
                    }
                }
                best.map(|(i, _)| i)
            }
        };
        winner.ok_or_else(|| PolicyError::NoMatch {
            policy: self.describe(),
            reason: no_match_reason(counts),
        })
    }

    /// The best `n` entries, latest first, by the same order and tie rules as `choose`.
    fn ranked<S: AsRef<str>>(
        &self,
        entries: &[Entry<'_>],
        versions: Vec<(usize, Version<'_>)>,
        n: usize,
        tags: &[S],
    ) -> Vec<Candidate> {
        if n == 0 {
            return Vec::new();
        }
        let candidate = |i: usize| Candidate {
            tag: tags[entries[i].tag].as_ref().to_string(),
            value: entries[i].value.to_string(),
        };
        // Each ranking is a total order (ties broken by input position, as the stable
        // order Flux's loop implies), so a selection of the first n and a sort of those
        // give what a full sort would, without sorting 100k values for ten.
        let order: Vec<usize> = match &self.rule {
            Rule::Semver(_) => {
                // Greatest first; equal versions keep input order, first wins.
                first_n(versions, n, |a, b| b.1.compare(&a.1).then(a.0.cmp(&b.0)))
                    .into_iter()
                    .map(|(i, _)| i)
                    .collect()
            }
            Rule::Alphabetical(o) => first_n((0..entries.len()).collect(), n, |&a, &b| {
                let ord = entries[a].value.as_bytes().cmp(entries[b].value.as_bytes());
                match o {
                    Order::Asc => ord.reverse(),
                    Order::Desc => ord,
                }
                .then(a.cmp(&b))
            }),
            Rule::Numerical(o) => {
                let numbers: Vec<(usize, f64)> = entries
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| parse_go_float(&e.value).map(|v| (i, v)))
                    .collect();
                // Latest first; among equal numbers the later tag first, as Flux picks it.
                // A NaN (which takes over Flux's loop wherever it stands) is listed last.
                first_n(numbers, n, |a, b| {
                    match (a.1.is_nan(), b.1.is_nan()) {
                        (false, false) => {
                            let ord = a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal);
                            match o {
                                Order::Asc => ord.reverse(),
                                Order::Desc => ord,
                            }
                        }
                        (a_nan, b_nan) => a_nan.cmp(&b_nan),
                    }
                    .then(b.0.cmp(&a.0))
                })
                .into_iter()
                .map(|(i, _)| i)
                .collect()
            }
        };
        order.into_iter().map(candidate).collect()
    }
}

/// The first `n` of `items` in `cmp` order, sorted; `cmp` must be a total order.
fn first_n<T>(mut items: Vec<T>, n: usize, cmp: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    if n == 0 {
        items.clear();
        return items;
    }
    if items.len() > n {
        items.select_nth_unstable_by(n - 1, &cmp);
        items.truncate(n);
    }
    items.sort_unstable_by(&cmp);
    items
}

fn no_match_reason(counts: &Counts) -> String {
    let mut parts = vec![format!("{} tags seen", counts.seen)];
    for (n, what) in [
        (counts.excluded, "excluded"),
        (counts.filtered_out, "filtered out by the pattern"),
        (counts.unparseable, "not versions (semver needs two dots)"),
        (
            counts.out_of_range,
            "outside the range (prereleases need a prerelease in the range, e.g. >=1.0.0-0)",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    parts.join(", ")
}

/// A `filterTags.extract` template, compiled once against its pattern with Go's
/// `Regexp.Expand` rules: `$name`, `${name}`, `$1`, `$$`; names are the longest run of
/// letters, digits and `_`; unknown or unmatched groups expand to nothing; a `$` not
/// followed by a valid reference is copied as is.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    /// A capture group by index; `None` for a name the pattern does not have.
    Group(Option<usize>),
}

impl Template {
    fn compile(template: &str, regex: &Regex) -> Self {
        let group_index = |name: &str| -> Option<usize> {
            if name.bytes().all(|c| c.is_ascii_digit()) {
                name.parse::<usize>()
                    .ok()
                    .filter(|&i| i < regex.captures_len())
            } else {
                regex.capture_names().position(|n| n == Some(name))
            }
        };
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(stripped) = after.strip_prefix('$') {
                literal.push('$');
                rest = stripped;
                continue;
            }
            let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
                match braced.find('}') {
                    Some(end) if end > 0 && braced[..end].bytes().all(is_name_byte) => {
                        (&braced[..end], end + 2)
                    }
                    _ => ("", 0),
                }
            } else {
                let end = after
                    .bytes()
                    .position(|c| !is_name_byte(c))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            if name.is_empty() {
                // Malformed reference: Go copies the `$` and goes on.
                literal.push('$');
                rest = after;
                continue;
            }
            if !literal.is_empty() {
                segments.push(Segment::Literal(std::mem::take(&mut literal)));
            }
            segments.push(Segment::Group(group_index(name)));
            rest = &after[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        Template { segments }
    }

    /// The expansion for one match; borrowed from the tag when the template is one group.
    pub(crate) fn expand<'t>(&self, text: &'t str, caps: &regex::CaptureLocations) -> Cow<'t, str> {
        let group = |i: &Option<usize>| -> &'t str {
            i.and_then(|i| caps.get(i))
                .map_or("", |(start, end)| &text[start..end])
        };
        match self.segments.as_slice() {
            [] => Cow::Borrowed(""),
            [Segment::Group(i)] => Cow::Borrowed(group(i)),
            segments => {
                let mut out = String::with_capacity(text.len());
                for segment in segments {
                    match segment {
                        Segment::Literal(l) => out.push_str(l),
                        Segment::Group(i) => out.push_str(group(i)),
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Order;

    fn select(spec: PolicySpec, tags: &[&str]) -> Result<String, PolicyError> {
        ImagePolicy::new(&spec)?.select(tags)
    }

    #[test]
    fn semver_first_of_equal_versions_wins_as_written() {
        let tags = ["1.0.0", "v1.0.0", "1.0.0+build"];
        assert_eq!(select(PolicySpec::semver("*"), &tags).unwrap(), "1.0.0");
        let tags = ["v1.0.0", "1.0.0"];
        assert_eq!(select(PolicySpec::semver("*"), &tags).unwrap(), "v1.0.0");
    }

    #[test]
    fn semver_skips_unparseable_and_excludes_prereleases() {
        let tags = ["latest", "1.2", "1.3.0-rc.1", "1.2.9", "main-abc"];
        assert_eq!(
            select(PolicySpec::semver(">=1.0.0"), &tags).unwrap(),
            "1.2.9"
        );
        assert_eq!(
            select(PolicySpec::semver(">=1.0.0-0"), &tags).unwrap(),
            "1.3.0-rc.1"
        );
    }

    #[test]
    fn semver_calver_tags() {
        let tags = ["2024.12.31", "2025.02.03", "2025.1.9"];
        assert_eq!(
            select(PolicySpec::semver(">=2025.0.0"), &tags).unwrap(),
            "2025.02.03"
        );
    }

    #[test]
    fn alphabetical_orders_bytes() {
        let tags = ["b", "a", "B", "c1", "c"];
        assert_eq!(
            select(PolicySpec::alphabetical(Order::Asc), &tags).unwrap(),
            "c1"
        );
        assert_eq!(
            select(PolicySpec::alphabetical(Order::Desc), &tags).unwrap(),
            "B"
        );
    }

    #[test]
    fn numerical_fails_on_non_numeric_unless_skipping() {
        let tags = ["1", "10", "9.5", "latest"];
        let err = select(PolicySpec::numerical(Order::Asc), &tags).unwrap_err();
        assert_eq!(err.code(), "non_numeric_tag");
        assert!(err.to_string().contains("\"latest\""));
        let spec = PolicySpec::numerical(Order::Asc).skipping_non_numeric();
        assert_eq!(select(spec, &tags).unwrap(), "10");
        let spec = PolicySpec::numerical(Order::Desc).skipping_non_numeric();
        assert_eq!(select(spec, &tags).unwrap(), "1");
    }

    #[test]
    fn numerical_equal_numbers_resolve_to_the_later_tag() {
        assert_eq!(
            select(PolicySpec::numerical(Order::Asc), &["1", "1.0"]).unwrap(),
            "1.0"
        );
        assert_eq!(
            select(PolicySpec::numerical(Order::Desc), &["1.0", "1"]).unwrap(),
            "1"
        );
    }

    #[test]
    fn filter_and_extract_timestamp_prefix() {
        let spec = PolicySpec::alphabetical(Order::Asc)
            .with_pattern(r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$")
            .with_extract("$ts");
        let tags = [
            "2025.01.02-abc123",
            "2025.03.01-def456",
            "main-0001",
            "2024.12.31-aaa",
        ];
        assert_eq!(select(spec, &tags).unwrap(), "2025.03.01-def456");
    }

    #[test]
    fn extract_collisions_keep_the_later_tag() {
        let spec = PolicySpec::semver(">=1.0.0")
            .with_pattern(r"^(?P<v>[0-9.]+)-(?P<sha>[a-f0-9]+)$")
            .with_extract("$v");
        let tags = ["1.2.0-aaa", "1.2.0-bbb", "1.1.0-ccc"];
        let policy = ImagePolicy::new(&spec).unwrap();
        assert_eq!(policy.select(&tags).unwrap(), "1.2.0-bbb");
        let explanation = policy.explain(&tags, 5).unwrap();
        assert_eq!(explanation.counts.duplicates, 1);
        assert_eq!(explanation.counts.candidates, 2);
    }

    #[test]
    fn extracted_value_is_a_prefix_only_for_a_leading_group() {
        let prefix = |pattern: &str, extract: &str| {
            let spec = PolicySpec::alphabetical(Order::Asc)
                .with_pattern(pattern)
                .with_extract(extract);
            ImagePolicy::new(&spec)
                .unwrap()
                .filter
                .unwrap()
                .value_is_prefix
        };
        assert!(prefix(
            r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$",
            "$ts"
        ));
        assert!(prefix(r"^(?P<ts>.*)-", "${ts}"));
        assert!(prefix(r"^([0-9]+)", "$1"));
        // Not at the start, not anchored, under a repetition or an alternation, multi-line
        // anchors, or a template that adds text: no shortcut.
        assert!(!prefix(r"^main-[a-f0-9]+-(?P<ts>.*)", "$ts"));
        assert!(!prefix(r"(?P<ts>[0-9]+)", "$ts"));
        assert!(!prefix(r"^(?P<ts>[0-9])+", "$ts"));
        assert!(!prefix(r"^(?P<ts>a)|b", "$ts"));
        assert!(!prefix(r"(?m)^(?P<ts>a)", "$ts"));
        assert!(!prefix(r"^(?P<ts>a)", "v$ts"));
        assert!(!prefix(r"^(?P<ts>a)(?P<b>b)", "$b"));
    }

    fn value_after(pattern: &str, extract: &str) -> Option<bool> {
        let spec = PolicySpec::numerical(Order::Asc)
            .with_pattern(pattern)
            .with_extract(extract);
        let policy = ImagePolicy::new(&spec).unwrap();
        let after = policy.filter.unwrap().value_after;
        after.map(|a| a.stops_at_newline)
    }

    #[test]
    fn trailing_any_group_is_found_after_its_prefix() {
        // Flux's documented numerical example, and variations of the same shape.
        assert_eq!(
            value_after(r"^main-[a-fA-F0-9]+-(?P<ts>.*)", "$ts"),
            Some(true)
        );
        assert_eq!(value_after(r"(?s)^v(?P<ts>.*)$", "${ts}"), Some(false));
        assert_eq!(value_after(r"^(?P<ts>.*)", "$ts"), Some(true));
        assert_eq!(value_after(r"x(?P<a>y)?-(.*)", "$2"), Some(true));
        // Not the last part, not `.*` (lazy, `.+`, a class), another group, a template
        // with text, a multi-line `$`, or under an alternation: the capture path.
        for (pattern, extract) in [
            (r"^(?P<ts>.*)-x", "$ts"),
            (r"^a-(?P<ts>.*?)", "$ts"),
            (r"^a-(?P<ts>.+)", "$ts"),
            (r"^a-(?P<ts>[0-9]*)", "$ts"),
            (r"^(?P<a>a)-(?P<ts>.*)", "$a"),
            (r"^a-(?P<ts>.*)", "v$ts"),
            (r"(?m)^a-(?P<ts>.*)$", "$ts"),
            (r"^a-(?P<ts>.*)|b", "$ts"),
            (r"^a-(?P<ts>[\x00-\x7f]*)", "$ts"),
        ] {
            assert_eq!(value_after(pattern, extract), None, "{pattern} {extract}");
        }
    }

    proptest::proptest! {
        /// The value after the prefix is what the capture engine gives, on tags with
        /// newlines, multi-byte characters and near-misses.
        #[test]
        fn value_after_the_prefix_is_the_captured_group(
            text in "(main|v|x|ab)?(-|\\.)?[-a-f0-9x\n.é]{0,10}(-[0-9]{0,4})?\n?",
        ) {
            for pattern in [
                r"^main-[a-fA-F0-9]+-(?P<ts>.*)",
                r"(?s)^v(?P<ts>.*)$",
                r"^v(?P<ts>.*)$",
                r"-(?P<ts>.*)",
                r"^(?P<ts>.*)",
                r"[a-f]+(?P<x>x)?-(?P<ts>.*)$",
                r"^(v|main)-?(?P<ts>.*)",
            ] {
                let spec = PolicySpec::numerical(Order::Asc).with_pattern(pattern).with_extract("$ts");
                let policy = ImagePolicy::new(&spec).unwrap();
                let filter = policy.filter.as_ref().unwrap();
                proptest::prop_assert!(filter.value_after.is_some(), "{}", pattern);
                let template = filter.extract.as_ref().unwrap();
                let mut caps = filter.regex.capture_locations();
                let fast = filter.extract(template, &text, &mut caps).map(Cow::into_owned);
                let slow = filter
                    .regex
                    .captures_read(&mut caps, &text)
                    .map(|_| template.expand(&text, &caps).into_owned());
                proptest::prop_assert_eq!(fast, slow, "{} on {:?}", pattern, text);
            }
        }
    }

    #[test]
    fn go_expand_semantics() {
        let re = Regex::new(r"^(?P<a>x+)(?P<b>y*)-(\d+)$").unwrap();
        let text = "xxy-42";
        let mut caps = re.capture_locations();
        re.captures_read(&mut caps, text).unwrap();
        let e = |t: &str| Template::compile(t, &re).expand(text, &caps).into_owned();
        assert_eq!(e("$a"), "xx");
        assert_eq!(e("${a}_$b"), "xx_y");
        assert_eq!(e("$a_"), ""); // the name is `a_`, which does not exist
        assert_eq!(e("$3"), "42");
        assert_eq!(e("$$a"), "$a");
        assert_eq!(e("$nope."), ".");
        assert_eq!(e("cost: $"), "cost: $");
        assert_eq!(e("${}x"), "${}x");
    }

    #[test]
    fn errors_name_their_input() {
        let err = ImagePolicy::new(&PolicySpec::semver(">=1.0.0").with_pattern("(")).unwrap_err();
        assert_eq!(err.code(), "invalid_regex");
        assert!(err.to_string().contains("filterTags.pattern"));
        let err = select(PolicySpec::semver(">=1.0.0"), &[]).unwrap_err();
        assert_eq!(err.code(), "empty_tags");
        let err = select(PolicySpec::semver(">=3.0.0"), &["1.0.0", "x"]).unwrap_err();
        assert_eq!(err.code(), "no_match");
        assert!(err.to_string().contains("1 outside the range"), "{err}");
        let err = select(PolicySpec::semver("*").with_pattern("^v"), &["1.0.0"]).unwrap_err();
        assert!(
            err.to_string().contains("none of the 1 tags matches"),
            "{err}"
        );
    }

    #[test]
    fn explanation_lists_candidates_in_order() {
        let policy = ImagePolicy::new(&PolicySpec::semver("^1")).unwrap();
        let tags = ["1.0.0", "1.2.0", "2.0.0", "1.1.0", "nope", "sha.sig"];
        let exclusions = Exclusions::flux_default();
        let e = policy.explain_excluding(&tags, &exclusions, 2).unwrap();
        assert_eq!(e.latest, "1.2.0");
        let top: Vec<_> = e.top.iter().map(|c| c.tag.as_str()).collect();
        assert_eq!(top, ["1.2.0", "1.1.0"]);
        assert_eq!(e.counts.seen, 6);
        assert_eq!(e.counts.excluded, 1);
        assert_eq!(e.counts.unparseable, 1);
        assert_eq!(e.counts.out_of_range, 1);
        assert_eq!(e.counts.candidates, 3);
    }

    #[test]
    fn exclusions_report_bad_patterns() {
        let err = Exclusions::new(&["^ok$", "(["]).unwrap_err();
        assert!(err.to_string().contains("exclusionList[1]"), "{err}");
    }

    #[test]
    fn remembered_exclusions_match_as_compiled_ones() {
        // The second call is served from the process-wide memo: it must behave the same,
        // and a list that does not compile is refused every time (errors are not kept).
        for _ in 0..2 {
            let e = Exclusions::new(&["^memo-.*$", r"\.att$"]).unwrap();
            assert!(e.is_excluded("memo-1"));
            assert!(e.is_excluded("sha256-abc.att"));
            assert!(!e.is_excluded("1.0.0"));
            assert!(Exclusions::new(&["^memo-(["]).is_err());
        }
        let other = Exclusions::new(&["^other$"]).unwrap();
        assert!(!other.is_excluded("memo-1"));
        assert!(other.is_excluded("other"));
    }
}
