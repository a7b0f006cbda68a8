//! Masterminds/semver v3 constraints (`NewConstraint` + `Check`), as Flux's semver policy
//! uses them.
//!
//! Parsing follows Masterminds' own grammar, which is defined by regular expressions:
//! ranges `a - b` are rewritten to `>= a, <= b`, the string is split on `||`, each
//! AND-group must match the "valid constraint" expression, and every `op version` pair is
//! found in it. Reproducing that grammar with the same expressions (Rust `regex` has the
//! same leftmost-first semantics as Go's RE2) keeps its quirks, such as the empty operator
//! or `[0-9|x|X|*]` accepting `|`, identical. Whitespace is Go's ASCII `\s`.
//!
//! Checking is plain integer logic. An AND-group admits prerelease versions only when one
//! of its own constraints names a prerelease (Masterminds v3.3+ `containsPre`).

use crate::version::{compare_prerelease, Version};
use crate::PolicyError;
use regex::Regex;
use std::cmp::Ordering;
use std::sync::OnceLock;

/// Masterminds' `MaxConstraintLen`.
const MAX_CONSTRAINT_LEN: usize = 512;
/// Masterminds' `MaxConstraintGroups`.
const MAX_CONSTRAINT_GROUPS: usize = 32;

/// One comparison of a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=` or no operator: equal, or tilde when the version has wildcards.
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    /// `~` and `~>`.
    Tilde,
    Caret,
}

/// A parsed version with an owned prerelease (constraints outlive the tags they check).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bound {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl Bound {
    fn as_version(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
        }
    }
}

#[derive(Debug, Clone)]
struct Constraint {
    op: Op,
    con: Bound,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

/// A semver range in Masterminds v3 syntax: `>=1.0.0 <2.0.0`, `~1.2`, `^1`, `1.x`,
/// `1.2 - 1.4.5`, `!=1.3.0`, `a || b`.
///
/// ```
/// use tagsmith_image_policy_core::{Constraints, Version};
/// let range = Constraints::parse(">=1.0.0 <2.0.0").unwrap();
/// assert!(range.check(&Version::parse_flux("1.4.2").unwrap()));
/// assert!(!range.check(&Version::parse_flux("2.0.0").unwrap()));
/// assert!(!range.check(&Version::parse_flux("1.5.0-rc.1").unwrap())); // prereleases opt in
/// ```
#[derive(Debug, Clone)]
pub struct Constraints {
    /// OR of AND-groups, each with whether it admits prereleases.
    groups: Vec<(Vec<Constraint>, bool)>,
}

struct Grammar {
    range: Regex,
    valid: Regex,
    find: Regex,
    single: Regex,
}

/// Masterminds' version-in-constraint expression (`cvRegex`): wildcards allowed in the
/// numbers, `|` included as its character class has it.
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// Operators in Masterminds' order; the second alternative is the empty operator.
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";
/// Go RE2's `\s` is ASCII only.
const WS: &str = r"[\t\n\f\r ]";

fn grammar() -> &'static Grammar {
    static GRAMMAR: OnceLock<Grammar> = OnceLock::new();
    GRAMMAR.get_or_init(|| {
        let build = |pattern: String| match Regex::new(&pattern) {
            Ok(re) => re,
            // The expressions are constants; a failure is a bug in this file.
            Err(err) => unreachable!("constraint grammar does not compile: {err}"),
        };
        Grammar {
            range: build(format!(r"{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")),
            valid: build(format!(
                r"^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
            )),
            find: build(format!(r"({OPS}){WS}*({CV})")),
            single: build(format!(r"^{WS}*({OPS}){WS}*({CV}){WS}*$")),
        }
    })
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Constraints {
    /// Parses a range; the error names the range and the part that is wrong.
    pub fn parse(range: &str) -> Result<Self, PolicyError> {
        let invalid = |reason: String| PolicyError::InvalidRange {
            range: range.to_string(),
            reason,
        };
        if range.len() > MAX_CONSTRAINT_LEN {
            return Err(invalid(format!("longer than {MAX_CONSTRAINT_LEN} bytes")));
        }
        let g = grammar();
        let rewritten = rewrite_hyphen_ranges(range);
        let ors: Vec<&str> = rewritten.split("||").collect();
        if ors.len() > MAX_CONSTRAINT_GROUPS {
            return Err(invalid(format!(
                "more than {MAX_CONSTRAINT_GROUPS} `||` groups"
            )));
        }
        let mut groups = Vec::with_capacity(ors.len());
        for group in ors {
            if !g.valid.is_match(group) {
                return Err(invalid(format!("improper constraint {group:?}")));
            }
            let mut found: Vec<&str> = g.find.find_iter(group).map(|m| m.as_str()).collect();
            if found.is_empty() {
                found.push(group);
            }
            let mut parsed = Vec::with_capacity(found.len());
            for text in found {
                parsed.push(parse_one(text).map_err(invalid)?);
            }
            let admits_pre = parsed.iter().any(|c| !c.con.pre.is_empty());
            groups.push((parsed, admits_pre));
        }
        Ok(Constraints { groups })
    }

    /// Whether `v` satisfies the range (Masterminds `Check`).
    pub fn check(&self, v: &Version<'_>) -> bool {
        self.groups
            .iter()
            .any(|(group, admits_pre)| group.iter().all(|c| c.check(v, *admits_pre)))
    }
}

/// Masterminds `rewriteRange`: each `a - b` becomes `>= a, <= b `.
fn rewrite_hyphen_ranges(input: &str) -> String {
    let g = grammar();
    let mut out = input.to_string();
    // Collect first: each match is replaced at its first occurrence in the growing string,
    // exactly as the original does.
    let matches: Vec<(String, String, String)> = g
        .range
        .captures_iter(input)
        .map(|c| {
            let whole = c.get(0).map_or("", |m| m.as_str()).to_string();
            let low = c.get(1).map_or("", |m| m.as_str()).to_string();
            let high = c.get(11).map_or("", |m| m.as_str()).to_string();
            (whole, low, high)
        })
        .collect();
    for (whole, low, high) in matches {
        out = out.replacen(&whole, &format!(">= {low}, <= {high} "), 1);
    }
    out
}

fn parse_one(text: &str) -> Result<Constraint, String> {
    let Some(m) = grammar().single.captures(text) else {
        return Err(format!("improper constraint {text:?}"));
    };
    let group = |i: usize| m.get(i).map_or("", |g| g.as_str());
    let op = match group(1) {
        "" | "=" => Op::TildeOrEqual,
        "!=" => Op::NotEqual,
        ">" => Op::Greater,
        "<" => Op::Less,
        ">=" | "=>" => Op::GreaterEqual,
        "<=" | "=<" => Op::LessEqual,
        "~" | "~>" => Op::Tilde,
        "^" => Op::Caret,
        other => return Err(format!("unknown operator {other:?}")),
    };
    let (major, minor, patch, pre) = (group(3), group(4), group(5), group(6));
    let strip = |s: &'_ str| s.trim_start_matches('.').to_string();
    let (version_text, dirty, minor_dirty, patch_dirty) = if is_x(major) || major.is_empty() {
        (format!("0.0.0{pre}"), true, false, false)
    } else if is_x(&strip(minor)) || minor.is_empty() {
        (format!("{major}.0.0{pre}"), true, true, false)
    } else if is_x(&strip(patch)) || patch.is_empty() {
        (format!("{major}{minor}.0{pre}"), true, false, true)
    } else {
        (group(2).to_string(), false, false, false)
    };
    let Some(v) = Version::parse_coerce(&version_text) else {
        return Err(format!("{text:?} holds no valid version"));
    };
    Ok(Constraint {
        op,
        con: Bound {
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: v.pre.to_string(),
        },
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Constraint {
    fn check(&self, v: &Version<'_>, admits_pre: bool) -> bool {
        if !v.pre.is_empty() && !admits_pre {
            return false;
        }
        let con = self.con.as_version();
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v, &con),
            Op::TildeOrEqual => v.compare(&con) == Ordering::Equal,
            Op::NotEqual => self.not_equal(v, &con),
            Op::Greater => self.greater(v, &con),
            Op::Less => v.compare(&con) == Ordering::Less,
            Op::GreaterEqual => v.compare(&con) != Ordering::Less,
            Op::LessEqual => self.less_equal(v, &con),
            Op::Tilde => self.tilde(v, &con),
            Op::Caret => self.caret(v, &con),
        }
    }

    fn not_equal(&self, v: &Version<'_>, con: &Version<'_>) -> bool {
        if self.dirty {
            if con.major != v.major {
                return true;
            }
            if con.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if con.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if !v.pre.is_empty() || !con.pre.is_empty() {
                    return compare_prerelease(v.pre, con.pre) != Ordering::Equal;
                }
                return false;
            }
        }
        v.compare(con) != Ordering::Equal
    }

    fn greater(&self, v: &Version<'_>, con: &Version<'_>) -> bool {
        if !self.dirty {
            return v.compare(con) == Ordering::Greater;
        }
        if v.major != con.major {
            return v.major > con.major;
        }
        if self.minor_dirty {
            return false;
        }
        if self.patch_dirty {
            return v.minor > con.minor;
        }
        v.compare(con) == Ordering::Greater
    }

    fn less_equal(&self, v: &Version<'_>, con: &Version<'_>) -> bool {
        if !self.dirty {
            return v.compare(con) != Ordering::Greater;
        }
        if v.major > con.major {
            return false;
        }
        !(v.major == con.major && v.minor > con.minor && !self.minor_dirty)
    }

    fn tilde(&self, v: &Version<'_>, con: &Version<'_>) -> bool {
        if v.compare(con) == Ordering::Less {
            return false;
        }
        // `~0.0.0` accepts everything, like `>= 0.0.0`.
        if con.major == 0
            && con.minor == 0
            && con.patch == 0
            && !self.minor_dirty
            && !self.patch_dirty
        {
            return true;
        }
        if v.major != con.major {
            return false;
        }
        v.minor == con.minor || self.minor_dirty
    }

    fn caret(&self, v: &Version<'_>, con: &Version<'_>) -> bool {
        if v.compare(con) == Ordering::Less {
            return false;
        }
        if con.major > 0 || self.minor_dirty {
            return v.major == con.major;
        }
        if v.major > 0 {
            return false;
        }
        if con.minor > 0 || self.patch_dirty {
            return v.minor == con.minor;
        }
        if v.minor > 0 {
            return false;
        }
        con.patch == v.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(range: &str, version: &str) -> bool {
        let c = Constraints::parse(range).unwrap_or_else(|e| panic!("{range}: {e}"));
        let v = Version::parse_coerce(version).unwrap_or_else(|| panic!("{version}"));
        c.check(&v)
    }

    #[test]
    fn comparison_operators() {
        assert!(sat(">=1.0.0 <2.0.0", "1.9.9"));
        assert!(!sat(">=1.0.0 <2.0.0", "2.0.0"));
        assert!(sat(">=1.0.0, <2.0.0", "1.0.0"));
        assert!(sat("=<1.2.3", "1.2.3"));
        assert!(sat("=>1.2.3", "1.2.4"));
        assert!(!sat("!=1.2.3", "1.2.3"));
        assert!(sat("!=1.2.3", "1.2.4"));
        assert!(sat("1.2.3", "v1.2.3"));
        assert!(sat("=1.2.3+meta", "1.2.3"));
    }

    #[test]
    fn tilde_caret_and_wildcards() {
        assert!(sat("~1.2", "1.2.9"));
        assert!(!sat("~1.2", "1.3.0"));
        assert!(sat("~1", "1.9.0"));
        assert!(sat("^1", "1.99.0"));
        assert!(!sat("^1", "2.0.0"));
        assert!(sat("^0.2.3", "0.2.9"));
        assert!(!sat("^0.2.3", "0.3.0"));
        assert!(sat("^0.0.3", "0.0.3"));
        assert!(!sat("^0.0.3", "0.0.4"));
        assert!(sat("1.x", "1.5.0"));
        assert!(!sat("1.x", "2.0.0"));
        assert!(sat("1.2.*", "1.2.7"));
        assert!(sat("*", "42.0.0"));
        assert!(!sat(">1.1", "1.1.5"));
        assert!(sat(">1.1", "1.2.0"));
        assert!(!sat("!=1.x", "1.0.1"));
    }

    #[test]
    fn hyphen_ranges_and_or() {
        assert!(sat("1.2 - 1.4.5", "1.4.5"));
        assert!(!sat("1.2 - 1.4.5", "1.4.6"));
        assert!(sat("1.2 - 1.4.5", "1.2.0"));
        assert!(sat("<1.0.0 || >=3.0.0", "3.1.0"));
        assert!(!sat("<1.0.0 || >=3.0.0", "2.0.0"));
    }

    #[test]
    fn prereleases_need_a_prerelease_in_their_group() {
        assert!(!sat(">=1.0.0", "1.1.0-rc.1"));
        assert!(sat(">=1.0.0-0", "1.1.0-rc.1"));
        assert!(sat(">=1.0.0-0 <2.0.0", "1.1.0-rc.1"));
        assert!(!sat(">=2.0.0-0 || <1.5.0", "1.1.0-rc.1"));
    }

    #[test]
    fn invalid_ranges_are_errors() {
        for bad in ["", ">= 1.0 <", "abc", "1.2.3 ||| 2", ">=1.0.0 &&", "1|2"] {
            let err = Constraints::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_range", "{bad}");
            assert!(err.to_string().contains(bad), "{err} names {bad:?}");
        }
    }
}
