//! Flux-compatible image tag selection (`ImagePolicy`), with no I/O.
//!
//! Give it the tags of an image and a policy; it returns the tag Flux's
//! image-reflector-controller would choose, as written in the registry:
//!
//! ```
//! use tagsmith_image_policy_core::{ImagePolicy, Order, PolicySpec};
//!
//! let tags = ["1.0.0", "1.4.2", "2.0.0", "1.5.0-rc.1", "2025.01.02-3f2a1bc", "latest"];
//!
//! // semver: Masterminds v3 ranges; prereleases only when the range names one.
//! let semver = ImagePolicy::new(&PolicySpec::semver(">=1.0.0 <2.0.0"))?;
//! assert_eq!(semver.select(&tags)?, "1.4.2");
//!
//! // filterTags + extract, ordered alphabetically (timestamp-prefixed build tags).
//! let builds = PolicySpec::alphabetical(Order::Asc)
//!     .with_pattern(r"^(?P<ts>[0-9]{4}\.[0-9]{2}\.[0-9]{2})-[a-f0-9]+$")
//!     .with_extract("$ts");
//! assert_eq!(ImagePolicy::new(&builds)?.select(&tags)?, "2025.01.02-3f2a1bc");
//!
//! // Why: counts and the best candidates.
//! let why = semver.explain(&tags, 3)?;
//! assert_eq!(why.counts.out_of_range, 3); // 2.0.0 and two prereleases (2025.01.02-3f2a1bc parses as one)
//! # Ok::<(), tagsmith_image_policy_core::PolicyError>(())
//! ```
//!
//! Compatibility notes (see `docs/flux-compat.md`): tags parse as in Flux 2.7+
//! (`fluxcd/pkg/version.ParseVersion`: two dots, then Masterminds' coercing parser); ties
//! follow Flux where Flux is deterministic (semver: first of equal versions; numerical: the
//! later of equal numbers; extract collisions: the later tag) and the same rules, applied in
//! input order, where Flux depends on Go map order.

mod constraint;
mod error;
mod go_syntax;
mod numeric;
mod policy;
mod spec;
mod stream;
mod version;

pub use constraint::Constraints;
pub use error::PolicyError;
pub use numeric::parse_go_float;
pub use policy::{Candidate, Counts, Exclusions, Explanation, ImagePolicy, DEFAULT_EXCLUSION_LIST};
pub use spec::{FilterTags, Order, PolicyKind, PolicySpec};
pub use version::Version;

/// One call for the common case: compile `spec` and select from `tags`.
///
/// ```
/// use tagsmith_image_policy_core::{select_latest, PolicySpec};
/// assert_eq!(select_latest(&["1.0.0", "1.1.0"], &PolicySpec::semver("~1.0"))?, "1.0.0");
/// # Ok::<(), tagsmith_image_policy_core::PolicyError>(())
/// ```
pub fn select_latest<S: AsRef<str> + Sync>(
    tags: &[S],
    spec: &PolicySpec,
) -> Result<String, PolicyError> {
    ImagePolicy::new(spec)?.select(tags)
}
