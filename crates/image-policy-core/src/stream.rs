//! Selection in one pass, without the candidate list that `explain` builds.
//!
//! Why a second path: `select` only needs the winner, and on 100k+ tags the list and the
//! map that collapses extract collisions cost as much as the regex itself (the map stops
//! fitting in cache at 1M tags). This path keeps only the best key seen so far and, for
//! extract, the few distinct values that tie with it, which is exactly what the tie rules
//! need. Large lists are cut into chunks scanned on separate threads; chunk results merge
//! in input order, so the answer is the same as a single pass.
//!
//! It gives up (returns `None`) wherever reproducing the list-based answer would need the
//! whole list: a NaN in a numerical policy (Flux's loop lets NaN take over), a tag that is
//! not a number without `skip_non_numeric` (the error names the first one in list order),
//! many distinct values tied for the best key, and no winner at all (the error message
//! counts every reason). The caller then takes the list-based path, so answers and errors
//! never differ; `tests` below and `tests/properties.rs` compare both on random input.

use crate::numeric::{parse_go_float, small_integer};
use crate::policy::Filter;
use crate::spec::Order;
use crate::version::Version;
use std::borrow::Cow;
use std::cmp::Ordering;

/// Below this many tags one thread does it all: spawning costs more than it saves.
const PARALLEL_MIN_TAGS: usize = 50_000;
/// Each thread gets at least this many tags.
const TAGS_PER_THREAD: usize = 25_000;
/// Distinct values tied for the best key before giving up (keeps the tie search linear).
const MAX_TIES: usize = 64;

/// The ordering a policy applies to values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ranking<'r> {
    /// Versions in the range; the first of equal versions wins.
    Semver(&'r crate::constraint::Constraints),
    /// Byte order; values are distinct or equal strings.
    Alphabetical(Order),
    /// Go `ParseFloat`; the last of equal numbers wins.
    Numerical {
        order: Order,
        skip_non_numeric: bool,
    },
}

/// One selection: how values rank, and the filter that turns tags into values.
pub(crate) struct Pass<'a> {
    pub ranking: Ranking<'a>,
    /// `None`: every tag is its own value.
    pub filter: Option<&'a Filter>,
}

/// The best key so far, stored without borrowing so the value can be an owned expansion.
#[derive(Debug, Clone, Copy)]
enum Key {
    Version {
        major: u64,
        minor: u64,
        patch: u64,
        pre_start: usize,
        pre_end: usize,
    },
    Text,
    Number(f64),
}

/// A distinct value tied for the best key, and the tag that carries it.
#[derive(Debug)]
struct Tie<'t> {
    value: Cow<'t, str>,
    tag: usize,
}

/// The state of one chunk: the best key and the values tied for it, in first-seen order.
#[derive(Debug, Default)]
struct Tally<'t> {
    best: Option<Key>,
    ties: Vec<Tie<'t>>,
}

/// Why the pass stopped: the list-based path must answer.
struct GiveUp;

impl<'a> Pass<'a> {
    /// The index of the winning tag, or `None` when the list-based path must decide.
    pub(crate) fn select<S: AsRef<str> + Sync>(&self, tags: &[S]) -> Option<usize> {
        self.select_in_chunks(tags, chunk_count(tags.len(), threads()))
    }

    pub(crate) fn select_in_chunks<S: AsRef<str> + Sync>(
        &self,
        tags: &[S],
        chunks: usize,
    ) -> Option<usize> {
        if tags.is_empty() {
            return None;
        }
        let chunks = chunks.clamp(1, tags.len());
        let size = tags.len().div_ceil(chunks);
        let tally = if chunks == 1 {
            self.scan(tags, 0).ok()?
        } else {
            let results: Vec<Result<Tally<'_>, GiveUp>> = std::thread::scope(|scope| {
                let handles: Vec<_> = tags
                    .chunks(size)
                    .enumerate()
                    .map(|(i, chunk)| scope.spawn(move || self.scan(chunk, i * size)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(Err(GiveUp)))
                    .collect()
            });
            let mut merged = Tally::default();
            for result in results {
                merged = self.merge(merged, result.ok()?).ok()?;
            }
            merged
        };
        self.winner(&tally)
    }

    /// One chunk; `offset` is the index of its first tag in the whole list.
    fn scan<'t, S: AsRef<str>>(&self, tags: &'t [S], offset: usize) -> Result<Tally<'t>, GiveUp> {
        let Some(filter) = self.filter else {
            return self.scan_plain(tags, offset);
        };
        let mut tally = Tally::default();
        let mut captures = filter.regex.capture_locations();
        // Alphabetical ascending with a value that is a prefix of its tag: a tag that sorts
        // below the best value cannot carry a better (or an equal) value, so it needs no
        // regex at all. On a shuffled list that is almost every tag.
        let skip_below_best =
            matches!(self.ranking, Ranking::Alphabetical(Order::Asc)) && filter.value_is_prefix;
        for (i, tag) in tags.iter().enumerate() {
            let text = tag.as_ref();
            if skip_below_best
                && tally
                    .ties
                    .first()
                    .is_some_and(|best| text.as_bytes() < best.value.as_bytes())
            {
                continue;
            }
            let value = match &filter.extract {
                Some(template) => match filter.extract(template, text, &mut captures) {
                    Some(value) => value,
                    None => continue,
                },
                None if filter.regex.is_match(text) => Cow::Borrowed(text),
                None => continue,
            };
            let Some(key) = self.key(&value)? else {
                continue;
            };
            self.offer(&mut tally, key, value, offset + i)?;
        }
        Ok(tally)
    }

    /// `scan` without a filter: every tag is its own value and nothing collapses, so one
    /// index is the whole state. A loop per ranking, because the general loop's per-tag
    /// bookkeeping costs more than comparing two short strings.
    fn scan_plain<'t, S: AsRef<str>>(
        &self,
        tags: &'t [S],
        offset: usize,
    ) -> Result<Tally<'t>, GiveUp> {
        let mut best: Option<usize> = None;
        match self.ranking {
            Ranking::Semver(range) => {
                let mut top: Option<Version<'t>> = None;
                for (i, tag) in tags.iter().enumerate() {
                    let Some(v) = Version::parse_flux(tag.as_ref()).filter(|v| range.check(v))
                    else {
                        continue;
                    };
                    if top.is_none_or(|t| v.compare(&t) == Ordering::Greater) {
                        top = Some(v);
                        best = Some(i);
                    }
                }
            }
            Ranking::Alphabetical(order) => {
                let mut top: Option<&[u8]> = None;
                for (i, tag) in tags.iter().enumerate() {
                    let text = tag.as_ref().as_bytes();
                    let better = top.is_none_or(|t| match order {
                        Order::Asc => text > t,
                        Order::Desc => text < t,
                    });
                    if better {
                        top = Some(text);
                        best = Some(i);
                    }
                }
            }
            Ranking::Numerical { order, .. } => {
                let mut top: Option<f64> = None;
                for (i, tag) in tags.iter().enumerate() {
                    // Build numbers without the general parser's call (most tags).
                    let n = match small_integer(tag.as_ref().as_bytes()) {
                        Some(n) => n as f64,
                        None => match self.key(tag.as_ref())? {
                            Some(Key::Number(n)) => n,
                            _ => continue,
                        },
                    };
                    // The last of equal numbers wins: replace unless strictly worse.
                    let worse = top.is_some_and(|t| match order {
                        Order::Asc => n < t,
                        Order::Desc => n > t,
                    });
                    if !worse {
                        top = Some(n);
                        best = Some(i);
                    }
                }
            }
        }
        let mut tally = Tally::default();
        if let Some(i) = best {
            let value = tags[i].as_ref();
            tally.best = self.key(value)?;
            tally.ties.push(Tie {
                value: Cow::Borrowed(value),
                tag: offset + i,
            });
        }
        Ok(tally)
    }

    /// The key of a value; `None` for values the policy skips.
    fn key(&self, value: &str) -> Result<Option<Key>, GiveUp> {
        Ok(match self.ranking {
            Ranking::Semver(range) => {
                Version::parse_flux(value)
                    .filter(|v| range.check(v))
                    .map(|v| {
                        // The prerelease is a slice of `value` (or a static "" when there is
                        // none); keep its position, not the slice.
                        let pre_start = if v.pre.is_empty() {
                            0
                        } else {
                            v.pre.as_ptr() as usize - value.as_ptr() as usize
                        };
                        Key::Version {
                            major: v.major,
                            minor: v.minor,
                            patch: v.patch,
                            pre_start,
                            pre_end: pre_start + v.pre.len(),
                        }
                    })
            }
            Ranking::Alphabetical(_) => Some(Key::Text),
            Ranking::Numerical {
                skip_non_numeric, ..
            } => match parse_go_float(value) {
                Some(n) if n.is_nan() => return Err(GiveUp),
                Some(n) => Some(Key::Number(n)),
                None if skip_non_numeric => None,
                None => return Err(GiveUp),
            },
        })
    }

    /// How `(a, a_value)` ranks against `(b, b_value)`: `Greater` means a is later.
    fn compare(&self, a: Key, a_value: &str, b: Key, b_value: &str) -> Ordering {
        match (self.ranking, a, b) {
            (
                Ranking::Semver(_),
                Key::Version {
                    major,
                    minor,
                    patch,
                    pre_start,
                    pre_end,
                },
                Key::Version {
                    major: b_major,
                    minor: b_minor,
                    patch: b_patch,
                    pre_start: b_start,
                    pre_end: b_end,
                },
            ) => Version {
                major,
                minor,
                patch,
                pre: &a_value[pre_start..pre_end],
            }
            .compare(&Version {
                major: b_major,
                minor: b_minor,
                patch: b_patch,
                pre: &b_value[b_start..b_end],
            }),
            (Ranking::Alphabetical(order), _, _) => {
                let ord = a_value.as_bytes().cmp(b_value.as_bytes());
                match order {
                    Order::Asc => ord,
                    Order::Desc => ord.reverse(),
                }
            }
            (Ranking::Numerical { order, .. }, Key::Number(x), Key::Number(y)) => {
                // No NaN reaches here (`key` gives up on it), so this is total.
                let ord = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                match order {
                    Order::Asc => ord,
                    Order::Desc => ord.reverse(),
                }
            }
            _ => unreachable!("keys come from the same ranking"),
        }
    }

    /// Whether equal values collapse to the last tag carrying them (Flux's extract map).
    fn dedup(&self) -> bool {
        self.filter.is_some_and(|f| f.extract.is_some())
    }

    /// Whether the last of equal keys wins (numerical) rather than the first.
    fn last_wins(&self) -> bool {
        matches!(self.ranking, Ranking::Numerical { .. })
    }

    fn offer<'t>(
        &self,
        tally: &mut Tally<'t>,
        key: Key,
        value: Cow<'t, str>,
        tag: usize,
    ) -> Result<(), GiveUp> {
        let ord = match (tally.best, tally.ties.first()) {
            (Some(best), Some(first)) => self.compare(key, &value, best, &first.value),
            _ => Ordering::Greater,
        };
        match ord {
            Ordering::Less => {}
            Ordering::Greater => {
                tally.best = Some(key);
                tally.ties.clear();
                tally.ties.push(Tie { value, tag });
            }
            Ordering::Equal if self.dedup() => add_tie(tally, value, tag)?,
            Ordering::Equal => {
                if self.last_wins() {
                    tally.best = Some(key);
                    tally.ties[0] = Tie { value, tag };
                }
            }
        }
        Ok(())
    }

    /// Folds the tally of the next chunk (later tags) into `left`.
    fn merge<'t>(&self, mut left: Tally<'t>, right: Tally<'t>) -> Result<Tally<'t>, GiveUp> {
        let (Some(lk), Some(rk)) = (left.best, right.best) else {
            return Ok(if left.best.is_some() { left } else { right });
        };
        match self.compare(rk, &right.ties[0].value, lk, &left.ties[0].value) {
            Ordering::Greater => Ok(right),
            Ordering::Less => Ok(left),
            Ordering::Equal if self.dedup() => {
                for tie in right.ties {
                    add_tie(&mut left, tie.value, tie.tag)?;
                }
                Ok(left)
            }
            Ordering::Equal => Ok(if self.last_wins() { right } else { left }),
        }
    }

    fn winner(&self, tally: &Tally<'_>) -> Option<usize> {
        let tie = if self.last_wins() {
            tally.ties.last()
        } else {
            tally.ties.first()
        };
        tie.map(|t| t.tag)
    }
}

/// A value whose key equals the best: the same value again (the later tag carries it), or
/// another value tied with it, kept in first-seen order for the tie rule. `best` keeps
/// describing `ties[0]`, whose text its prerelease offsets index.
fn add_tie<'t>(tally: &mut Tally<'t>, value: Cow<'t, str>, tag: usize) -> Result<(), GiveUp> {
    let full = tally.ties.len() >= MAX_TIES;
    match tally.ties.iter_mut().find(|t| t.value == value) {
        Some(tie) => tie.tag = tag,
        None if full => return Err(GiveUp),
        None => tally.ties.push(Tie { value, tag }),
    }
    Ok(())
}

/// The cores this process may use, read once: `available_parallelism` reads cgroup files
/// on Linux, which costs more than selecting from a thousand tags.
fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

fn chunk_count(tags: usize, threads: usize) -> usize {
    if tags < PARALLEL_MIN_TAGS || threads < 2 {
        1
    } else {
        threads.min(tags / TAGS_PER_THREAD).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ImagePolicy, PolicySpec};
    use proptest::prelude::*;

    /// Tags from a small alphabet, so versions, extracted values and numbers collide often.
    fn tag() -> impl Strategy<Value = String> {
        prop_oneof![
            (
                prop::bool::ANY,
                0u8..3,
                0u8..3,
                0u8..3,
                prop::option::of(0u8..3),
                prop::option::of(0u8..2),
                prop::option::of("[ab]"),
            )
                .prop_map(|(v, a, b, c, rc, build, sha)| {
                    let mut t = format!("{}{a}.{b}.{c}", if v { "v" } else { "" });
                    if let Some(rc) = rc {
                        t.push_str(&format!("-rc.{rc}"));
                    }
                    if let Some(build) = build {
                        t.push_str(&format!("+b{build}"));
                    }
                    if let Some(sha) = sha {
                        t.push_str(&format!("_{sha}"));
                    }
                    t
                }),
            prop::sample::select(vec![
                "1", "1.0", "01", "2", "-0", "0", "2e0", "x", "NaN", "inf"
            ])
            .prop_map(String::from),
        ]
    }

    fn specs() -> Vec<PolicySpec> {
        let mut kinds = vec![
            PolicySpec::semver("*"),
            PolicySpec::semver(">=1.0.0-0"),
            PolicySpec::semver("^1 || 2.x"),
            PolicySpec::alphabetical(Order::Asc),
            PolicySpec::alphabetical(Order::Desc),
            PolicySpec::numerical(Order::Asc),
            PolicySpec::numerical(Order::Desc),
            PolicySpec::numerical(Order::Asc).skipping_non_numeric(),
            PolicySpec::numerical(Order::Desc).skipping_non_numeric(),
        ];
        let mut all = kinds.clone();
        for kind in kinds.drain(..) {
            all.push(kind.clone().with_pattern("^v"));
            // Borrowed expansion (one group) and owned expansion (a literal around it).
            all.push(
                kind.clone()
                    .with_pattern(r"^(?P<v>[^_]*)(_.*)?$")
                    .with_extract("$v"),
            );
            all.push(
                kind.clone()
                    .with_pattern(r"^v?(?P<v>[^_+]*)")
                    .with_extract("${v}0"),
            );
            // A repeated group captures its last piece, which is not a prefix of the tag.
            all.push(
                kind.clone()
                    .with_pattern(r"^(?P<v>[0-9v.])+")
                    .with_extract("$v"),
            );
        }
        all
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn one_pass_answers_like_the_candidate_list(
            tags in prop::collection::vec(tag(), 1..60),
            chunks in 1usize..6,
        ) {
            for spec in specs() {
                let policy = ImagePolicy::new(&spec).unwrap();
                let listed = policy.select_listed(&tags);
                match policy.pass().select_in_chunks(&tags, chunks) {
                    Some(i) => prop_assert_eq!(
                        listed.as_deref().ok(),
                        Some(tags[i].as_str()),
                        "{:?} in {} chunks", spec, chunks
                    ),
                    // Giving up is allowed only where the list path has a reason to differ
                    // from a plain maximum, or errs.
                    None => prop_assert!(
                        listed.is_err()
                            || tags.iter().any(|t| t == "NaN" || t == "x")
                            || tags.len() > MAX_TIES,
                        "{:?} gave up on {:?}", spec, tags
                    ),
                }
            }
        }
    }

    #[test]
    fn one_pass_answers_the_common_cases() {
        let tags = ["1.0.0", "v1.2.0", "1.2.0", "2.0.0-rc.1", "latest"];
        let policy = ImagePolicy::new(&PolicySpec::semver(">=1.0.0")).unwrap();
        assert_eq!(policy.pass().select_in_chunks(&tags, 1), Some(1));
        assert_eq!(policy.pass().select_in_chunks(&tags, 3), Some(1));
        let builds = PolicySpec::alphabetical(Order::Asc)
            .with_pattern(r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$")
            .with_extract("$ts");
        let tags = [
            "2025.01.02-aa",
            "2025.03.01-bb",
            "main",
            "2025.03.01-cc",
            "2024.12.31-dd",
        ];
        let policy = ImagePolicy::new(&builds).unwrap();
        // Same extracted value twice: the later tag carries it, across a chunk border too.
        assert_eq!(policy.pass().select_in_chunks(&tags, 1), Some(3));
        assert_eq!(policy.pass().select_in_chunks(&tags, 2), Some(3));
        let numbers = ["1", "3", "3.0", "2"];
        let policy = ImagePolicy::new(&PolicySpec::numerical(Order::Asc)).unwrap();
        assert_eq!(policy.pass().select_in_chunks(&numbers, 2), Some(2));
    }

    #[test]
    fn one_pass_gives_up_where_the_list_decides() {
        let numerical = ImagePolicy::new(&PolicySpec::numerical(Order::Asc)).unwrap();
        assert_eq!(
            numerical.pass().select_in_chunks(&["1", "NaN", "2"], 1),
            None
        );
        assert_eq!(numerical.pass().select_in_chunks(&["1", "x"], 1), None);
        let semver = ImagePolicy::new(&PolicySpec::semver(">=5.0.0")).unwrap();
        assert_eq!(semver.pass().select_in_chunks(&["1.0.0"], 1), None);
        // Many distinct values with one version: the tie search would turn quadratic.
        let tags: Vec<String> = (0..=MAX_TIES).map(|i| format!("1.0.0+b{i}-x")).collect();
        let extract = PolicySpec::semver("*")
            .with_pattern(r"^(?P<v>.*)-x$")
            .with_extract("$v");
        let policy = ImagePolicy::new(&extract).unwrap();
        assert_eq!(policy.pass().select_in_chunks(&tags, 1), None);
        assert_eq!(policy.select(&tags).unwrap(), "1.0.0+b0-x");
    }

    #[test]
    fn small_lists_stay_on_one_thread() {
        assert_eq!(chunk_count(10, 8), 1);
        assert_eq!(chunk_count(49_999, 8), 1);
        assert_eq!(chunk_count(100_000, 1), 1);
        assert_eq!(chunk_count(100_000, 2), 2);
        assert_eq!(chunk_count(60_000, 8), 2);
        assert_eq!(chunk_count(1_000_000, 8), 8);
    }
}
