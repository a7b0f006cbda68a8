//! Versions as Flux parses image tags: `fluxcd/pkg/version.ParseVersion`, i.e. at least two
//! dots anywhere in the tag, then Masterminds/semver v3 `NewVersion` in its default coerce
//! mode (optional `v`, leading zeros accepted, missing minor/patch read as 0).
//!
//! Why not the `semver` crate: it rejects exactly what Flux accepts here (leading zeros such
//! as CalVer `2025.02.03`, the `v` prefix, partial cores like `1.2-rc.1`), and Masterminds
//! compares prerelease identifiers with its own rules (a numeric identifier too large for
//! u64 compares as text). The grammar is small and unambiguous, so a hand-written parser is
//! both exact and allocation-free; it borrows the prerelease from the tag.

use std::cmp::Ordering;

/// Masterminds' `MaxVersionLen`: longer strings are rejected before parsing.
pub const MAX_VERSION_LEN: usize = 256;

/// A version parsed from a tag, borrowing its prerelease from the tag text.
///
/// Build metadata is validated but ignored, as in Masterminds: `1.0.0+a` equals `1.0.0+b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version<'a> {
    /// Major number.
    pub major: u64,
    /// Minor number (0 when absent).
    pub minor: u64,
    /// Patch number (0 when absent).
    pub patch: u64,
    /// Prerelease identifiers without the leading `-` (empty when none).
    pub pre: &'a str,
}

impl<'a> Version<'a> {
    /// Parses a tag the way current Flux does (2.7+): at least two `.` anywhere, then
    /// Masterminds `NewVersion` in coerce mode. Returns `None` for tags Flux skips.
    ///
    /// ```
    /// use tagsmith_image_policy_core::Version;
    /// assert!(Version::parse_flux("v1.2.3").is_some());
    /// assert!(Version::parse_flux("2025.02.03").is_some());   // leading zero coerced
    /// assert!(Version::parse_flux("1.2-rc.1").is_some());     // two dots anywhere
    /// assert!(Version::parse_flux("1.2").is_none());
    /// ```
    pub fn parse_flux(tag: &'a str) -> Option<Self> {
        if tag.bytes().filter(|&b| b == b'.').take(2).count() < 2 {
            return None;
        }
        Self::parse_coerce(tag)
    }

    /// Masterminds v3 `NewVersion` with `CoerceNewVersion = true` (its default):
    /// `v?N(.N)?(.N)?(-pre)?(+meta)?`, numbers may carry leading zeros, a numeric
    /// prerelease identifier may not.
    pub fn parse_coerce(s: &'a str) -> Option<Self> {
        if s.len() > MAX_VERSION_LEN {
            return None;
        }
        let b = s.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'v'));
        let major = parse_number(b, &mut i)?;
        let mut minor = 0;
        let mut patch = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            minor = parse_number(b, &mut i)?;
            if b.get(i) == Some(&b'.') {
                i += 1;
                patch = parse_number(b, &mut i)?;
            }
        }
        let mut pre = "";
        if b.get(i) == Some(&b'-') {
            let start = i + 1;
            i = scan_identifiers(b, start)?;
            pre = &s[start..i];
            if !valid_prerelease(pre) {
                return None;
            }
        }
        if b.get(i) == Some(&b'+') {
            i = scan_identifiers(b, i + 1)?;
        }
        (i == b.len()).then_some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Masterminds `Compare`: major, minor, patch, then a release sorts above its
    /// prereleases, then prerelease identifiers one by one.
    pub fn compare(&self, other: &Version<'_>) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(self.pre, other.pre),
            })
    }
}

/// Digits as u64 (Go's `strconv.ParseUint`: overflow is a parse error).
fn parse_number(b: &[u8], i: &mut usize) -> Option<u64> {
    let start = *i;
    let mut n: u64 = 0;
    while let Some(d) = b.get(*i).filter(|c| c.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        *i += 1;
    }
    (*i > start).then_some(n)
}

/// `[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*` from `start`; returns the end index.
fn scan_identifiers(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    loop {
        let part = i;
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            i += 1;
        }
        if i == part {
            return None;
        }
        if b.get(i) == Some(&b'.')
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
        {
            i += 1;
        } else {
            return Some(i);
        }
    }
}

/// Masterminds `validatePrerelease`: numeric identifiers must not start with `0`.
pub(crate) fn valid_prerelease(pre: &str) -> bool {
    pre.split('.').all(|part| {
        let leading_zero_number =
            part.len() > 1 && part.starts_with('0') && part.bytes().all(|c| c.is_ascii_digit());
        !part.is_empty() && !leading_zero_number
    })
}

/// Masterminds `comparePrerelease`: identifiers pairwise; a missing identifier sorts first;
/// numbers (that fit u64) sort below text; numbers numerically, text by bytes.
pub(crate) fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = compare_identifier(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

fn compare_identifier(x: &str, y: &str) -> Ordering {
    if x == y {
        return Ordering::Equal;
    }
    match (parse_u64(x), parse_u64(y)) {
        (Some(a), Some(b)) => {
            // Masterminds answers "greater" only for a strict numeric win, "less" otherwise
            // (x != y here, and numeric identifiers never carry leading zeros).
            if a > b {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => x.cmp(y),
    }
}

/// Go's `strconv.ParseUint(s, 10, 64)` for identifiers: digits only, no sign.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version<'_> {
        Version::parse_coerce(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn flux_needs_two_dots_anywhere() {
        assert!(Version::parse_flux("1.2").is_none());
        assert!(Version::parse_flux("v1").is_none());
        assert!(Version::parse_flux("1.2.3").is_some());
        assert!(Version::parse_flux("1.2-rc.1").is_some());
        assert!(Version::parse_flux("1-a.b.c").is_some());
        assert!(Version::parse_flux("latest").is_none());
    }

    #[test]
    fn coerce_accepts_leading_zeros_and_v() {
        let calver = v("2025.02.03");
        assert_eq!((calver.major, calver.minor, calver.patch), (2025, 2, 3));
        assert_eq!(v("v1.2.3").compare(&v("1.2.3")), Ordering::Equal);
        assert_eq!(v("1.2").patch, 0);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "v",
            "1.",
            "1..2",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3+",
            "1.2.3-a..b",
            "V1.2.3",
            "1.2.3 ",
            " 1.2.3",
            "1.2.3-a_b",
            "18446744073709551616.0.0",
        ] {
            assert!(
                Version::parse_coerce(bad).is_none(),
                "{bad:?} must not parse"
            );
        }
        assert!(Version::parse_coerce(&"1".repeat(300)).is_none());
    }

    #[test]
    fn prerelease_order_follows_masterminds() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(v(pair[0]).compare(&v(pair[1])), Ordering::Less, "{pair:?}");
        }
        assert_eq!(v("1.0.0+a").compare(&v("1.0.0+b")), Ordering::Equal);
    }
}
