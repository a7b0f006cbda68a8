//! The crate's one error type. Every message is one line that names the forge, the
//! repository and what was being done (with the head and base branch or the pull request);
//! no message holds the token.

use crate::config::ForgeKind;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a forge call failed: which forge, which repository, doing what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorContext {
    /// The forge.
    pub forge: ForgeKind,
    /// The repository, `host/owner/repo`.
    pub repo: String,
    /// What was being done, with the branches or the number: `opening a pull request from
    /// tagsmith/updates to main`.
    pub action: String,
}

impl fmt::Display for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} repository {}, {}",
            self.forge, self.repo, self.action
        )
    }
}

/// Why a forge call failed.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames, serde::Serialize)]
#[strum(serialize_all = "snake_case")]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ForgeError {
    /// The git remote names no forge repository.
    #[error("remote {remote}: {reason}")]
    InvalidRemote {
        /// The remote, user and password replaced by `<redacted>`.
        remote: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration is incomplete or wrong (no API address for Gitea, a bad URL).
    #[error("forge configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// HTTP 401: the token is missing, expired or revoked.
    #[error("{context}: HTTP 401 Unauthorized: the forge refused the token (missing, expired or revoked)")]
    Unauthorized {
        /// Where.
        context: ErrorContext,
    },
    /// HTTP 403: the token lacks a permission or scope.
    #[error(
        "{context}: HTTP 403 Forbidden: the token lacks the permission{}",
        detail(message)
    )]
    Forbidden {
        /// Where.
        context: ErrorContext,
        /// The forge's own words, one line.
        message: String,
    },
    /// HTTP 404: the repository (or pull request) does not exist, or the token cannot see it.
    #[error(
        "{context}: HTTP 404 Not Found: the repository does not exist or the token cannot see it{}",
        detail(message)
    )]
    NotFound {
        /// Where.
        context: ErrorContext,
        /// The forge's own words, one line.
        message: String,
    },
    /// HTTP 422 or 409: the forge understood the request and refused it (no commits
    /// between the branches, a branch that does not exist, a conflicting pull request).
    #[error(
        "{context}: HTTP {status}: the forge refused the request{}",
        detail(message)
    )]
    Unprocessable {
        /// Where.
        context: ErrorContext,
        /// 422 or 409.
        status: u16,
        /// The forge's own words, one line.
        message: String,
    },
    /// The forge's rate limit is spent (429, or GitHub's 403 with no requests left).
    #[error("{context}: HTTP {status}: rate limit reached; {}", reset_text(*reset_at))]
    RateLimited {
        /// Where.
        context: ErrorContext,
        /// 429 or 403.
        status: u16,
        /// When the forge accepts requests again, from `x-ratelimit-reset`,
        /// `RateLimit-Reset` or `Retry-After`.
        #[serde(serialize_with = "reset_at_text")]
        reset_at: Option<SystemTime>,
    },
    /// No answer within the timeout.
    #[error("{context}: no answer within {timeout_ms} ms")]
    Timeout {
        /// Where.
        context: ErrorContext,
        /// The per-request bound.
        timeout_ms: u64,
    },
    /// Another HTTP failure: a status not named above, or no connection at all.
    #[error("{context}: {}{message}", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Http {
        /// Where.
        context: ErrorContext,
        /// The status, when there was an answer.
        status: Option<u16>,
        /// What happened, one line.
        message: String,
    },
    /// The answer was not what the forge documents (not JSON, a missing field, too large).
    #[error("{context}: unexpected answer: {message}")]
    InvalidResponse {
        /// Where.
        context: ErrorContext,
        /// What is wrong.
        message: String,
    },
    /// Labels the repository does not have (Gitea adds only existing labels; create them).
    #[error(
        "{context}: the repository has no label {}: create it first",
        quoted(labels)
    )]
    UnknownLabels {
        /// Where.
        context: ErrorContext,
        /// The labels missing.
        labels: Vec<String>,
    },
    /// Reviewers the forge does not know (GitLab needs user ids, looked up by name).
    #[error("{context}: no user {}", quoted(reviewers))]
    UnknownReviewers {
        /// Where.
        context: ErrorContext,
        /// The user names not found.
        reviewers: Vec<String>,
    },
}

impl ForgeError {
    /// A stable kind for programs, bindings and exit codes.
    pub fn code(&self) -> &'static str {
        // The variant's name in snake_case, derived once (strum).
        self.into()
    }

    /// Where the call failed, for errors that come from a forge call.
    pub fn context(&self) -> Option<&ErrorContext> {
        match self {
            ForgeError::InvalidRemote { .. } | ForgeError::Config { .. } => None,
            ForgeError::Unauthorized { context }
            | ForgeError::Forbidden { context, .. }
            | ForgeError::NotFound { context, .. }
            | ForgeError::Unprocessable { context, .. }
            | ForgeError::RateLimited { context, .. }
            | ForgeError::Timeout { context, .. }
            | ForgeError::Http { context, .. }
            | ForgeError::InvalidResponse { context, .. }
            | ForgeError::UnknownLabels { context, .. }
            | ForgeError::UnknownReviewers { context, .. } => Some(context),
        }
    }

    /// The HTTP status the forge answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ForgeError::Unauthorized { .. } => Some(401),
            ForgeError::Forbidden { .. } => Some(403),
            ForgeError::NotFound { .. } => Some(404),
            ForgeError::Unprocessable { status, .. } | ForgeError::RateLimited { status, .. } => {
                Some(*status)
            }
            ForgeError::Http { status, .. } => *status,
            _ => None,
        }
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message})")
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `reset_at` as UTC RFC 3339 text (or null).
fn reset_at_text<S: serde::Serializer>(at: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.collect_str(&format_utc(*at)),
        None => s.serialize_none(),
    }
}

fn reset_text(reset_at: Option<SystemTime>) -> String {
    match reset_at {
        Some(at) => format!("it resets at {}", format_utc(at)),
        None => "the forge gave no reset time".to_string(),
    }
}

/// `2026-12-01T10:00:00Z`: the reset time without a date crate (whole seconds, UTC).
pub(crate) fn format_utc(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting_matches_known_instants() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(format_utc(at), "2023-11-14T22:13:20Z");
        // A leap day.
        let at = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_utc(at), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn rate_limit_message_is_one_line_with_the_reset_time() {
        let err = ForgeError::RateLimited {
            context: ErrorContext {
                forge: ForgeKind::GitHub,
                repo: "github.com/acme/fleet".into(),
                action: "opening a pull request from tagsmith/updates to main".into(),
            },
            status: 403,
            reset_at: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
        };
        assert_eq!(
            err.to_string(),
            "GitHub repository github.com/acme/fleet, opening a pull request from tagsmith/updates to main: HTTP 403: rate limit reached; it resets at 2023-11-14T22:13:20Z"
        );
        assert_eq!(err.code(), "rate_limited");
    }
}
