//! The policy specification: plain data, serde-ready, mirroring Flux's `ImagePolicy.spec`.

use crate::PolicyError;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which end of the order is "latest".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// The greatest value is latest (Flux's default).
    #[default]
    Asc,
    /// The least value is latest.
    Desc,
}

impl FromStr for Order {
    type Err = PolicyError;

    /// Case-insensitive, as Flux upper-cases the CRD's value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("asc") {
            Ok(Order::Asc)
        } else if s.eq_ignore_ascii_case("desc") {
            Ok(Order::Desc)
        } else {
            Err(PolicyError::InvalidOrder {
                order: s.to_string(),
            })
        }
    }
}

impl<'de> Deserialize<'de> for Order {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        })
    }
}

/// The ordering policy (`spec.policy` in Flux).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// Greatest version satisfying a Masterminds v3 range.
    Semver {
        /// The range, e.g. `>=1.0.0 <2.0.0`.
        range: String,
    },
    /// Byte-order comparison of the (extracted) tags.
    Alphabetical {
        /// `asc`: greatest is latest; `desc`: least is latest.
        #[serde(default)]
        order: Order,
    },
    /// Comparison of the (extracted) tags as 64-bit floats.
    Numerical {
        /// `asc`: greatest is latest; `desc`: least is latest.
        #[serde(default)]
        order: Order,
    },
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyKind::Semver { range } => write!(f, "semver range {range:?}"),
            PolicyKind::Alphabetical { order } => write!(f, "alphabetical order {order}"),
            PolicyKind::Numerical { order } => write!(f, "numerical order {order}"),
        }
    }
}

/// `spec.filterTags`: keep tags matching `pattern`, order them by `extract`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterTags {
    /// A regular expression (Go RE2 syntax, `(?P<name>...)` groups); absent matches all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A template with `$name`, `${name}`, `$1`, `$$` (Go `Regexp.Expand`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// A whole policy: ordering, optional filter, and how to treat non-numeric tags.
///
/// ```
/// use tagsmith_image_policy_core::{Order, PolicySpec};
/// let spec = PolicySpec::alphabetical(Order::Asc)
///     .with_pattern(r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$")
///     .with_extract("$ts");
/// let json = serde_json::to_string(&spec).unwrap();
/// assert!(json.contains(r#""alphabetical":{"order":"asc"}"#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// The ordering policy.
    #[serde(rename = "policy")]
    pub kind: PolicyKind,
    /// The optional tag filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<FilterTags>,
    /// Numerical policy only: skip tags that are not numbers instead of failing, which is
    /// what Flux does (a tagsmith extension, off by default).
    #[serde(default)]
    pub skip_non_numeric: bool,
}

impl PolicySpec {
    /// A spec with just an ordering policy.
    pub fn new(kind: PolicyKind) -> Self {
        PolicySpec {
            kind,
            filter_tags: None,
            skip_non_numeric: false,
        }
    }

    /// Semver policy over a Masterminds v3 range.
    pub fn semver(range: impl Into<String>) -> Self {
        Self::new(PolicyKind::Semver {
            range: range.into(),
        })
    }

    /// Alphabetical policy.
    pub fn alphabetical(order: Order) -> Self {
        Self::new(PolicyKind::Alphabetical { order })
    }

    /// Numerical policy.
    pub fn numerical(order: Order) -> Self {
        Self::new(PolicyKind::Numerical { order })
    }

    /// Sets `filterTags.pattern`.
    pub fn with_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.filter_tags
            .get_or_insert_with(FilterTags::default)
            .pattern = Some(pattern.into());
        self
    }

    /// Sets `filterTags.extract`.
    pub fn with_extract(mut self, extract: impl Into<String>) -> Self {
        self.filter_tags
            .get_or_insert_with(FilterTags::default)
            .extract = Some(extract.into());
        self
    }

    /// Skips non-numeric tags under the numerical policy instead of failing.
    pub fn skipping_non_numeric(mut self) -> Self {
        self.skip_non_numeric = true;
        self
    }
}
