//! The crate's one error type.

/// Why a policy could not be built or could not choose a tag. Every message names the
/// offending input; [`PolicyError::code`] gives a stable machine-readable kind.
#[derive(
    Debug,
    Clone,
    PartialEq,
    thiserror::Error,
    strum::IntoStaticStr,
    strum::VariantNames,
    serde::Serialize,
)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PolicyError {
    /// The tag list was empty (Flux: "version list argument cannot be empty").
    #[error("the tag list is empty: there is nothing to choose from")]
    EmptyTags,
    /// No tag passed the filter and the policy.
    #[error("no tag matches {policy}: {reason}")]
    NoMatch {
        /// The policy, described as in its spec (`semver range ">=1.0.0"`).
        policy: String,
        /// What happened to the tags (how many were seen, filtered out, out of range).
        reason: String,
    },
    /// A `filterTags.pattern` or exclusion pattern does not compile.
    #[error("invalid regular expression {pattern:?} in {field}: {reason}")]
    InvalidRegex {
        /// Which setting held it (`filterTags.pattern`, `exclusionList[2]`).
        field: String,
        /// The pattern as given.
        pattern: String,
        /// The compiler's explanation.
        reason: String,
    },
    /// A semver range that Masterminds' grammar rejects.
    #[error("invalid semver range {range:?}: {reason}")]
    InvalidRange {
        /// The range as given.
        range: String,
        /// The part that is wrong.
        reason: String,
    },
    /// An order other than `asc`/`desc` (any case).
    #[error("invalid order {order:?}: expected asc or desc")]
    InvalidOrder {
        /// The order as given.
        order: String,
    },
    /// The numerical policy met a tag that is not a number (Flux fails the policy).
    #[error("tag {tag:?} is not a number, so the numerical policy cannot order it (filter it out with filterTags.pattern, or skip such tags)")]
    NonNumericTag {
        /// The tag as written.
        tag: String,
    },
}

impl PolicyError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        // The variant's name in snake_case, derived once (strum): the bindings' exception
        // classes and error codes are built from the same names.
        self.into()
    }

    /// Whether the error comes from the spec itself (bad input) rather than from the tags.
    pub fn is_invalid_spec(&self) -> bool {
        matches!(
            self,
            PolicyError::InvalidRegex { .. }
                | PolicyError::InvalidRange { .. }
                | PolicyError::InvalidOrder { .. }
        )
    }
}
