//! The HTTP layer the three forges share: one `reqwest` client with timeouts, the token in
//! one header, answers read up to a bound, statuses turned into [`ForgeError`]s.

use crate::config::{ForgeConfig, ForgeKind, Secret};
use crate::error::{ErrorContext, ForgeError};
use crate::repo::RepoId;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// Pages followed at most when listing: 50 pages of 50 to 100 pull requests each is far
/// beyond any repository's open pull requests, and a forge that always says "next" must
/// not keep the bot busy forever.
const MAX_PAGES: u32 = 50;

/// Longest piece of a forge's own error text kept in a message.
const MAX_MESSAGE_CHARS: usize = 300;

/// A forge's API: base URL, token, client.
pub(crate) struct Api {
    pub(crate) kind: ForgeKind,
    base: Url,
    token: Secret,
    auth_scheme: &'static str,
    accept: &'static str,
    extra_headers: Vec<(&'static str, &'static str)>,
    client: reqwest::Client,
    timeout: Duration,
    max_body: usize,
    /// The token's user, asked once per client.
    me: OnceCell<Option<String>>,
}

/// A successful answer: status, headers and the (bounded) body.
pub(crate) struct Reply {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// The body as `T`.
    pub(crate) fn json<T: DeserializeOwned>(
        &self,
        context: &ErrorContext,
    ) -> Result<T, ForgeError> {
        serde_json::from_slice(&self.body).map_err(|e| ForgeError::InvalidResponse {
            context: context.clone(),
            message: format!("the JSON does not have the documented shape: {e}"),
        })
    }

    /// Whether a `Link` header has a `rel="next"` entry (GitHub, GitLab and Gitea all
    /// send one while more pages follow).
    pub(crate) fn has_next_page(&self) -> bool {
        self.headers
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|link| {
                link.split(';').skip(1).any(|param| {
                    let param = param.trim().to_ascii_lowercase();
                    param == "rel=\"next\"" || param == "rel=next"
                })
            })
    }
}

impl Api {
    /// A client for `config`; `auth_scheme` is what precedes the token in `Authorization`
    /// (`token` for Gitea, `Bearer` for GitHub and GitLab), `accept` the media type asked.
    pub(crate) fn new(
        config: &ForgeConfig,
        auth_scheme: &'static str,
        accept: &'static str,
        extra_headers: Vec<(&'static str, &'static str)>,
    ) -> Result<Self, ForgeError> {
        let base = config.api_base()?;
        if config.token.expose().trim().is_empty() {
            return Err(ForgeError::Config {
                message: format!("no {} token given", config.kind),
            });
        }
        if HeaderValue::from_str(config.token.expose()).is_err() {
            return Err(ForgeError::Config {
                message: format!(
                    "the {} token has characters an HTTP header cannot carry",
                    config.kind
                ),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // Followed redirects (GitHub answers 301 for a renamed repository) lose the
            // Authorization header when they change host.
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("tagsmith/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ForgeError::Config {
                message: format!(
                    "cannot set up the HTTP client: {}",
                    one_line(&e.to_string())
                ),
            })?;
        Ok(Api {
            kind: config.kind,
            base,
            token: config.token.clone(),
            auth_scheme,
            accept,
            extra_headers,
            client,
            timeout: config.timeout,
            max_body: config.max_response_bytes,
            me: OnceCell::new(),
        })
    }

    /// Where a call on `repo` doing `action` fails, for its errors.
    pub(crate) fn context(&self, repo: &RepoId, action: String) -> ErrorContext {
        ErrorContext {
            forge: self.kind,
            repo: repo.to_string(),
            action,
        }
    }

    /// The user the token acts as, from `GET /user`; asked once, then remembered (also
    /// when `name` makes it `None`). `name` reads the user's name from the answer, or from
    /// the error a forge gives for tokens that have no user.
    pub(crate) async fn token_user<U: DeserializeOwned>(
        &self,
        repo: &RepoId,
        name: impl FnOnce(Result<U, ForgeError>) -> Result<Option<String>, ForgeError>,
    ) -> Result<Option<String>, ForgeError> {
        let context = self.context(repo, "reading the user the token belongs to".into());
        self.me
            .get_or_try_init(|| async {
                let url = self.url(&["user"], &[]);
                name(self.json::<U>(&context, Method::GET, url, None).await)
            })
            .await
            .cloned()
    }

    /// Lists pages `1..=MAX_PAGES` (`url` gives the address of a page, by its number) and
    /// returns the first item that is `wanted`; stops at an empty page or when `more_pages`
    /// says the answer was the last page.
    pub(crate) async fn find_in_pages<T: DeserializeOwned>(
        &self,
        context: &ErrorContext,
        url: impl Fn(&str) -> Url,
        more_pages: fn(&Reply) -> bool,
        wanted: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, ForgeError> {
        for page in 1..=MAX_PAGES {
            let reply = self
                .send(context, Method::GET, url(&page.to_string()), None)
                .await?;
            let items: Vec<T> = reply.json(context)?;
            let count = items.len();
            if let Some(found) = items.into_iter().find(|item| wanted(item)) {
                return Ok(Some(found));
            }
            if count == 0 || !more_pages(&reply) {
                break;
            }
        }
        Ok(None)
    }

    /// The path of the API base, for forges served under a sub-path: what precedes
    /// `/api/v1` or `/api/v4` (empty for a forge at the root).
    pub(crate) fn site_prefix(&self) -> String {
        let path = self.base.path().trim_end_matches('/');
        ["/api/v1", "/api/v3", "/api/v4"]
            .iter()
            .find_map(|suffix| path.strip_suffix(suffix))
            .unwrap_or("")
            .to_string()
    }

    /// The URL of `segments` under the base (each segment percent-encoded, so a GitLab
    /// project path becomes one `group%2Frepo` segment), with `query`.
    pub(crate) fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends a request and returns the answer when it is a 2xx; any other status becomes
    /// the matching [`ForgeError`].
    pub(crate) async fn send(
        &self,
        context: &ErrorContext,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, ForgeError> {
        let mut auth =
            HeaderValue::from_str(&format!("{} {}", self.auth_scheme, self.token.expose()))
                .map_err(|_| ForgeError::Config {
                    message: format!("the {} token cannot be sent in a header", self.kind),
                })?;
        auth.set_sensitive(true);
        let mut request = self
            .client
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .header(reqwest::header::ACCEPT, self.accept);
        for (name, value) in &self.extra_headers {
            request = request.header(HeaderName::from_static(name), *value);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport(context, &e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Err(self.too_large(context));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(context, &e))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(self.too_large(context));
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok(Reply { headers, body });
        }
        Err(self.status_error(context, status, &headers, &body))
    }

    /// Sends and decodes the JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        context: &ErrorContext,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ForgeError> {
        self.send(context, method, url, body).await?.json(context)
    }

    fn too_large(&self, context: &ErrorContext) -> ForgeError {
        ForgeError::InvalidResponse {
            context: context.clone(),
            message: format!("the answer is larger than {} bytes", self.max_body),
        }
    }

    fn transport(&self, context: &ErrorContext, e: &reqwest::Error) -> ForgeError {
        if e.is_timeout() {
            return ForgeError::Timeout {
                context: context.clone(),
                timeout_ms: self.timeout.as_millis() as u64,
            };
        }
        // reqwest's own text is "error sending request for url (...)"; the causes below it
        // say what went wrong (connection refused, certificate, DNS).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        ForgeError::Http {
            context: context.clone(),
            status: None,
            message: self.clean(&message),
        }
    }

    fn status_error(
        &self,
        context: &ErrorContext,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ForgeError {
        let context = context.clone();
        let mut message = self.clean(&forge_message(body));
        // "Not Found" for a 404 says nothing the status does not.
        if message.eq_ignore_ascii_case("not found") {
            message.clear();
        }
        let reset_at = reset_time(headers, SystemTime::now());
        // GitHub answers a spent primary limit with 403 and x-ratelimit-remaining: 0, and
        // a secondary limit with 403 or 429 and retry-after.
        let limit_spent = header(headers, "x-ratelimit-remaining").is_some_and(|v| v.trim() == "0")
            || header(headers, "ratelimit-remaining").is_some_and(|v| v.trim() == "0")
            || header(headers, "retry-after").is_some();
        match status {
            429 => ForgeError::RateLimited {
                context,
                status,
                reset_at,
            },
            403 if limit_spent => ForgeError::RateLimited {
                context,
                status,
                reset_at,
            },
            401 => ForgeError::Unauthorized { context },
            403 => ForgeError::Forbidden { context, message },
            404 => ForgeError::NotFound { context, message },
            409 | 422 => ForgeError::Unprocessable {
                context,
                status,
                message,
            },
            _ => ForgeError::Http {
                context,
                status: Some(status),
                message: if message.is_empty() {
                    "unexpected status".to_string()
                } else {
                    message
                },
            },
        }
    }

    /// One line, bounded, and never the token (a forge might echo a header back).
    fn clean(&self, text: &str) -> String {
        let token = self.token.expose();
        let text = if token.len() >= 4 {
            text.replace(token, "<redacted>")
        } else {
            text.to_string()
        };
        let mut line = one_line(&text);
        if line.chars().count() > MAX_MESSAGE_CHARS {
            line = line.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
        }
        line
    }
}

/// The forge's own explanation in an error body: GitHub and Gitea `message` (GitHub adds
/// `errors[].message`), GitLab `message` (a string, a list, or field -> list) or `error`.
fn forge_message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        // Not JSON (a proxy's HTML page): no use quoting it.
        return String::new();
    };
    let mut parts = Vec::new();
    for key in ["message", "error", "error_description"] {
        if let Some(v) = value.get(key) {
            flatten(v, None, &mut parts);
        }
    }
    if let Some(errors) = value.get("errors").and_then(|e| e.as_array()) {
        for e in errors {
            match e.get("message") {
                Some(m) => flatten(m, None, &mut parts),
                None => {
                    // GitHub validation errors without text: resource, field, code.
                    let field = e.get("field").and_then(|f| f.as_str()).unwrap_or_default();
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                    if !field.is_empty() || !code.is_empty() {
                        parts.push(format!("{field} {code}").trim().to_string());
                    }
                }
            }
        }
    }
    parts.dedup();
    parts.join("; ")
}

fn flatten(value: &serde_json::Value, key: Option<&str>, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(match key {
            Some(k) => format!("{k} {s}"),
            None => s.clone(),
        }),
        serde_json::Value::Array(items) => items.iter().for_each(|v| flatten(v, key, out)),
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| flatten(v, Some(k), out)),
        _ => {}
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// When the limit resets: `x-ratelimit-reset` (GitHub) or `RateLimit-Reset` (GitLab), both
/// Unix seconds; else `Retry-After` in seconds from `now`.
pub(crate) fn reset_time(headers: &HeaderMap, now: SystemTime) -> Option<SystemTime> {
    for name in ["x-ratelimit-reset", "ratelimit-reset"] {
        if let Some(secs) = header(headers, name).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(UNIX_EPOCH + Duration::from_secs(secs));
        }
    }
    header(headers, "retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| now + Duration::from_secs(secs))
}

pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn github_reset_header_is_unix_seconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let h = headers(&[("x-ratelimit-reset", "1700000000"), ("retry-after", "5")]);
        assert_eq!(
            reset_time(&h, now),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
    }

    #[test]
    fn retry_after_counts_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let h = headers(&[("retry-after", "60")]);
        assert_eq!(reset_time(&h, now), Some(now + Duration::from_secs(60)));
    }

    #[test]
    fn gitlab_validation_messages_are_flattened() {
        let body = br#"{"message":{"source_branch":["is invalid"],"base":["missing"]}}"#;
        assert_eq!(
            forge_message(body),
            "base missing; source_branch is invalid"
        );
    }

    #[test]
    fn github_validation_errors_are_appended() {
        let body = br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:updates."}]}"#;
        assert_eq!(
            forge_message(body),
            "Validation Failed; A pull request already exists for acme:updates."
        );
    }

    #[test]
    fn html_error_page_gives_no_message() {
        assert_eq!(forge_message(b"<html><body>Bad gateway</body></html>"), "");
    }

    #[test]
    fn link_header_next_is_found_among_others() {
        let reply = Reply {
            headers: headers(&[(
                "link",
                "<https://api.example/x?page=1>; rel=\"prev\", <https://api.example/x?page=3>; rel=\"next\"",
            )]),
            body: Vec::new(),
        };
        assert!(reply.has_next_page());
        let last = Reply {
            headers: headers(&[("link", "<https://api.example/x?page=1>; rel=\"first\"")]),
            body: Vec::new(),
        };
        assert!(!last.has_next_page());
    }
}
