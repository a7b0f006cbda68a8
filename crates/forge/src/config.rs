//! Configuration as data: which forge, where its API is, the token.

use crate::error::ForgeError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The kinds of forge tagsmith opens pull requests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForgeKind {
    /// Gitea (and Forgejo), API v1: pull requests.
    Gitea,
    /// GitHub and GitHub Enterprise Server, REST v3: pull requests.
    GitHub,
    /// GitLab, REST v4: merge requests.
    GitLab,
}

impl ForgeKind {
    /// The forge that serves `host`, where the host alone says so: `github.com` is GitHub,
    /// `gitlab.com` is GitLab; any other host (a company's GitLab, any Gitea) is `None`,
    /// and the caller must be told which forge it is.
    pub fn detect(host: &str) -> Option<ForgeKind> {
        match host
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .as_str()
        {
            "github.com" | "www.github.com" | "ssh.github.com" => Some(ForgeKind::GitHub),
            "gitlab.com" | "www.gitlab.com" | "altssh.gitlab.com" => Some(ForgeKind::GitLab),
            _ => None,
        }
    }

    /// The public API base, where the forge has one public instance.
    pub fn default_api_url(self) -> Option<&'static str> {
        match self {
            ForgeKind::GitHub => Some("https://api.github.com"),
            ForgeKind::GitLab => Some("https://gitlab.com/api/v4"),
            ForgeKind::Gitea => None,
        }
    }

    /// The lower-case name (`gitea`, `github`, `gitlab`), as `--forge` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Gitea => "gitea",
            ForgeKind::GitHub => "github",
            ForgeKind::GitLab => "gitlab",
        }
    }

    /// The path an instance serves its API under (`/api/v1`); GitHub.com has none, its
    /// API lives on its own host.
    fn api_suffix(self) -> &'static str {
        match self {
            ForgeKind::Gitea => "/api/v1",
            ForgeKind::GitHub => "/api/v3",
            ForgeKind::GitLab => "/api/v4",
        }
    }
}

impl fmt::Display for ForgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForgeKind::Gitea => "Gitea",
            ForgeKind::GitHub => "GitHub",
            ForgeKind::GitLab => "GitLab",
        })
    }
}

impl FromStr for ForgeKind {
    type Err = ForgeError;

    /// `gitea` (also `forgejo`), `github`, `gitlab`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gitea" | "forgejo" => Ok(ForgeKind::Gitea),
            "github" => Ok(ForgeKind::GitHub),
            "gitlab" => Ok(ForgeKind::GitLab),
            other => Err(ForgeError::Config {
                message: format!("unknown forge {other:?}: expected gitea, github or gitlab"),
            }),
        }
    }
}

pub use tagsmith_secret::Secret;

/// How to reach a forge's API.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    /// Which forge.
    pub kind: ForgeKind,
    /// The API base (`https://gitea.example.com/api/v1`) or the instance's address
    /// (`https://gitea.example.com`; the API path is added). `None`: the public API of
    /// GitHub or GitLab; Gitea has none and needs this.
    pub api_url: Option<String>,
    /// The token (GitHub: a PAT or an app token; GitLab: a personal, project or group
    /// access token; Gitea: an access token).
    pub token: Secret,
    /// Bound on each request, connection and answer included.
    pub timeout: Duration,
    /// Bound on the size of an answer's body; a larger one is an error, never read whole.
    pub max_response_bytes: usize,
}

impl ForgeConfig {
    /// A configuration with the default API base, a 30 s timeout and 4 MiB answers.
    pub fn new(kind: ForgeKind, token: Secret) -> Self {
        ForgeConfig {
            kind,
            api_url: None,
            token,
            timeout: Duration::from_secs(30),
            max_response_bytes: 4 << 20,
        }
    }

    /// The same with this API base or instance address.
    pub fn with_api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(url.into());
        self
    }

    /// The API base the client calls: `api_url` as given when it already ends with the
    /// forge's API path (`/api/v1`, `/api/v3`, `/api/v4`), else with that path added
    /// (except on `api.github.com`); the public default when `api_url` is `None`.
    pub fn api_base(&self) -> Result<reqwest::Url, ForgeError> {
        let given = match (&self.api_url, self.kind.default_api_url()) {
            (Some(url), _) => url.trim().trim_end_matches('/').to_string(),
            (None, Some(default)) => default.to_string(),
            (None, None) => {
                return Err(ForgeError::Config {
                    message: format!(
                        "{} has no public instance: give the address of its API (e.g. https://gitea.example.com)",
                        self.kind
                    ),
                })
            }
        };
        let mut url = reqwest::Url::parse(&given).map_err(|e| ForgeError::Config {
            message: format!("{} API address {given:?} is not a URL: {e}", self.kind),
        })?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(ForgeError::Config {
                message: format!(
                    "{} API address {given:?} must be an http(s) URL with a host",
                    self.kind
                ),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ForgeError::Config {
                message: format!(
                    "{} API address must not hold credentials: give the token separately",
                    self.kind
                ),
            });
        }
        url.set_query(None);
        url.set_fragment(None);
        let suffix = self.kind.api_suffix();
        let on_api_host = self.kind == ForgeKind::GitHub
            && url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case("api.github.com"));
        let path = url.path().trim_end_matches('/').to_string();
        if !on_api_host && !path.ends_with(suffix) {
            url.set_path(&format!("{path}{suffix}"));
        } else {
            url.set_path(&path);
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base(kind: ForgeKind, url: Option<&str>) -> String {
        let mut config = ForgeConfig::new(kind, Secret::new("t"));
        config.api_url = url.map(str::to_string);
        config.api_base().unwrap().to_string()
    }

    #[test]
    fn public_defaults() {
        assert_eq!(base(ForgeKind::GitHub, None), "https://api.github.com/");
        assert_eq!(base(ForgeKind::GitLab, None), "https://gitlab.com/api/v4");
    }

    #[test]
    fn explicit_api_github_com_gets_no_api_path() {
        assert_eq!(
            base(ForgeKind::GitHub, Some("https://api.github.com/")),
            "https://api.github.com/"
        );
    }

    #[test]
    fn non_http_api_url_is_refused() {
        let err = ForgeConfig::new(ForgeKind::Gitea, Secret::new("t"))
            .with_api_url("ssh://git.example.com")
            .api_base()
            .unwrap_err();
        assert_eq!(err.code(), "config");
    }

    #[test]
    fn gitea_without_url_is_a_config_error() {
        let err = ForgeConfig::new(ForgeKind::Gitea, Secret::new("t"))
            .api_base()
            .unwrap_err();
        assert_eq!(err.code(), "config");
        assert!(err.to_string().contains("Gitea"), "{err}");
    }

    #[test]
    fn instance_address_gets_the_api_path() {
        assert_eq!(
            base(ForgeKind::Gitea, Some("https://git.example.com/")),
            "https://git.example.com/api/v1"
        );
        assert_eq!(
            base(ForgeKind::Gitea, Some("https://example.com/git/api/v1/")),
            "https://example.com/git/api/v1"
        );
        assert_eq!(
            base(ForgeKind::GitHub, Some("https://ghe.example.com")),
            "https://ghe.example.com/api/v3"
        );
        assert_eq!(
            base(ForgeKind::GitLab, Some("https://gitlab.example.com/api/v4")),
            "https://gitlab.example.com/api/v4"
        );
    }

    #[test]
    fn api_url_with_credentials_is_refused_without_echoing_them() {
        let err = ForgeConfig::new(ForgeKind::Gitea, Secret::new("t"))
            .with_api_url("https://bot:hunter2@git.example.com")
            .api_base()
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn token_never_prints() {
        let config = ForgeConfig::new(ForgeKind::GitHub, Secret::new("ghp_abc123"));
        assert!(!format!("{config:?}").contains("ghp_abc123"));
        assert_eq!(Secret::new("x").to_string(), "<redacted>");
    }

    #[test]
    fn detect_only_unambiguous_hosts() {
        assert_eq!(ForgeKind::detect("github.com"), Some(ForgeKind::GitHub));
        assert_eq!(ForgeKind::detect("GitLab.com"), Some(ForgeKind::GitLab));
        assert_eq!(ForgeKind::detect("gitlab.example.com"), None);
        assert_eq!(ForgeKind::detect("gitea.example.com"), None);
        assert_eq!(ForgeKind::detect("github.com.evil.example"), None);
    }

    #[test]
    fn forge_names_parse() {
        assert_eq!("GitHub".parse::<ForgeKind>().unwrap(), ForgeKind::GitHub);
        assert_eq!("forgejo".parse::<ForgeKind>().unwrap(), ForgeKind::Gitea);
        assert_eq!(
            "bitbucket".parse::<ForgeKind>().unwrap_err().code(),
            "config"
        );
    }
}
