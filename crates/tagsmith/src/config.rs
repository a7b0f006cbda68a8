//! One run configuration, defined once: [`RunConfig`] is what the CLI flattens into its
//! flags (feature `cli`), what Python's keyword arguments and Node's options object are
//! deserialised into, and what the stubs of both bindings are checked against (its JSON
//! schema). The `TAGSMITH_*` environment is applied in one place, [`RunConfig::with_env`].
//!
//! ```
//! use tagsmith::config::RunConfig;
//! let config: RunConfig = serde_json::from_value(serde_json::json!({
//!     "root": "/srv/gitops", "dry_run": true, "snapshot": "tags.yaml"
//! })).unwrap();
//! assert!(config.dry_run && config.push);
//! let env = |name: &str| (name == "TAGSMITH_GIT_TOKEN").then(|| "t0k".to_string());
//! let config = config.with_env(&env);
//! assert_eq!(config.git_token.as_ref().map(|t| t.expose()), Some("t0k"));
//! // A misspelt option is an error, not silently ignored.
//! assert!(serde_json::from_value::<RunConfig>(serde_json::json!({"dryrun": true})).is_err());
//! ```

use crate::RunError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tagsmith_git_commit::{GitAuth, KeySource};
use tagsmith_secret::Secret;

/// How to run the automation. Every field has a default; unknown fields are refused.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The Git checkout holding the Flux objects and the manifests (default: the current
    /// folder). Exclusive with `url`.
    #[cfg_attr(feature = "cli", arg(value_name = "PATH"))]
    #[schemars(extend("x-path" = true))]
    pub root: Option<PathBuf>,
    /// Clone this Git URL into a temporary folder and run there instead of a checkout.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "URL", conflicts_with = "root")
    )]
    pub url: Option<String>,
    /// With `url`: the branch to clone (default: what the automations check out, else the
    /// remote's default branch).
    #[cfg_attr(feature = "cli", arg(long, value_name = "BRANCH", requires = "url"))]
    pub branch: Option<String>,
    /// Read the Flux objects from this file instead of the YAML under the checkout.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    #[schemars(extend("x-path" = true))]
    pub config: Option<PathBuf>,
    /// Compute and report (diffs, commit messages); write, commit and push nothing.
    #[cfg_attr(feature = "cli", arg(long))]
    pub dry_run: bool,
    /// Read tags from this snapshot file (image -> tags) instead of the registries: offline.
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    #[schemars(extend("x-path" = true))]
    pub snapshot: Option<PathBuf>,
    /// Docker config.json for registries whose ImageRepository has no secret
    /// [env: TAGSMITH_DOCKER_CONFIG].
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    #[schemars(extend("x-path" = true))]
    pub docker_config: Option<PathBuf>,
    /// Local stand-ins for Kubernetes secrets: DIR/<namespace>/<name>/<key>
    /// [env: TAGSMITH_SECRETS_DIR].
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    #[schemars(extend("x-path" = true))]
    pub secrets_dir: Option<PathBuf>,
    /// Where scan results are cached [env: TAGSMITH_CACHE_DIR] (default
    /// $XDG_CACHE_HOME/tagsmith or ~/.cache/tagsmith, never inside the work tree).
    #[cfg_attr(feature = "cli", arg(long, value_name = "DIR"))]
    #[schemars(extend("x-path" = true))]
    pub cache_dir: Option<PathBuf>,
    /// Always ask the registries; neither read nor write the scan cache.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_cache: bool,
    /// The Git remote to push to.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "NAME", default_value = "origin")
    )]
    pub remote: String,
    /// Push after committing (the CLI's --no-push commits locally only).
    #[cfg_attr(
        feature = "cli",
        arg(long = "no-push", action = clap::ArgAction::SetFalse, help = "Commit locally; do not push")
    )]
    pub push: bool,
    /// Push attempts when others push to the branch first (each re-applies the update on
    /// the new tip; nothing is ever forced onto it).
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 3))]
    pub max_push_attempts: u32,
    /// Registry scans in flight at once.
    #[cfg_attr(feature = "cli", arg(long, value_name = "N", default_value_t = 8))]
    pub concurrency: usize,
    /// SSH private key for the clone and every push, with known_hosts (host keys are always
    /// checked) [env: TAGSMITH_GIT_SSH_KEY].
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "FILE", requires = "known_hosts")
    )]
    #[schemars(extend("x-path" = true))]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file for the SSH key [env: TAGSMITH_GIT_KNOWN_HOSTS].
    #[cfg_attr(feature = "cli", arg(long, value_name = "FILE"))]
    #[schemars(extend("x-path" = true))]
    pub known_hosts: Option<PathBuf>,
    /// Passphrase of the SSH key [env: TAGSMITH_GIT_SSH_PASSPHRASE]; never a flag.
    #[cfg_attr(feature = "cli", arg(skip))]
    pub ssh_passphrase: Option<Secret>,
    /// HTTPS token for the clone and every push [env: TAGSMITH_GIT_TOKEN]; never a flag.
    #[cfg_attr(feature = "cli", arg(skip))]
    pub git_token: Option<Secret>,
    /// HTTPS user (with a token: default x-access-token) [env: TAGSMITH_GIT_USERNAME].
    #[cfg_attr(feature = "cli", arg(skip))]
    pub git_username: Option<String>,
    /// HTTPS password [env: TAGSMITH_GIT_PASSWORD]; never a flag.
    #[cfg_attr(feature = "cli", arg(skip))]
    pub git_password: Option<Secret>,
    /// After pushing to a push branch other than the checkout branch, open a pull request
    /// from it to the checkout branch (or update the open one; close it when the branch no
    /// longer differs).
    #[cfg_attr(feature = "cli", arg(long))]
    pub pull_request: bool,
    /// The forge: gitea, github or gitlab (default: from the remote's host when it is
    /// github.com or gitlab.com).
    #[cfg_attr(feature = "cli", arg(long, value_name = "KIND"))]
    pub forge: Option<String>,
    /// The forge's API base or address (default: the public API of github.com or
    /// gitlab.com; required for Gitea).
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub forge_url: Option<String>,
    /// The forge token [env: TAGSMITH_FORGE_TOKEN]; never a flag.
    #[cfg_attr(feature = "cli", arg(skip))]
    pub forge_token: Option<Secret>,
    /// A label for the pull requests (repeatable).
    #[cfg_attr(feature = "cli", arg(long = "pr-label", value_name = "LABEL"))]
    pub pr_labels: Vec<String>,
    /// A reviewer to request on new pull requests (repeatable; `org/team` for a team).
    #[cfg_attr(feature = "cli", arg(long = "pr-reviewer", value_name = "USER"))]
    pub pr_reviewers: Vec<String>,
    /// One push branch and pull request per policy: the push branch + `/` + the policy's
    /// namespace and name, so one bad bump does not hold back the others.
    #[cfg_attr(feature = "cli", arg(long, requires = "pull_request"))]
    pub branch_per_policy: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            root: None,
            url: None,
            branch: None,
            config: None,
            dry_run: false,
            snapshot: None,
            docker_config: None,
            secrets_dir: None,
            cache_dir: None,
            no_cache: false,
            remote: "origin".into(),
            push: true,
            max_push_attempts: 3,
            concurrency: 8,
            ssh_key: None,
            known_hosts: None,
            ssh_passphrase: None,
            git_token: None,
            git_username: None,
            git_password: None,
            pull_request: false,
            forge: None,
            forge_url: None,
            forge_token: None,
            pr_labels: Vec::new(),
            pr_reviewers: Vec::new(),
            branch_per_policy: false,
        }
    }
}

/// A value of the environment (unset or empty: absent).
fn env_value(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

impl RunConfig {
    /// A configuration for the checkout at `root`, every other field at its default.
    pub fn for_root(root: impl Into<PathBuf>) -> Self {
        RunConfig {
            root: Some(root.into()),
            ..RunConfig::default()
        }
    }

    /// Fills what is not set from the `TAGSMITH_*` environment read through `env`: given
    /// values win. `TAGSMITH_DOCKER_CONFIG`, `TAGSMITH_SECRETS_DIR`, `TAGSMITH_CACHE_DIR`, `TAGSMITH_FORGE_TOKEN`
    /// and the `TAGSMITH_GIT_*` credentials ([`GitCredentials::with_env`]).
    pub fn with_env(mut self, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let path = |name: &str| env_value(env, name).map(PathBuf::from);
        self.docker_config = self
            .docker_config
            .or_else(|| path("TAGSMITH_DOCKER_CONFIG"));
        self.secrets_dir = self.secrets_dir.or_else(|| path("TAGSMITH_SECRETS_DIR"));
        self.cache_dir = self.cache_dir.or_else(|| path("TAGSMITH_CACHE_DIR"));
        self.forge_token = self
            .forge_token
            .or_else(|| env_value(env, "TAGSMITH_FORGE_TOKEN").map(Secret::new));
        let git = self.git_credentials().with_env(env);
        self.ssh_key = git.ssh_key;
        self.known_hosts = git.known_hosts;
        self.ssh_passphrase = git.ssh_passphrase;
        self.git_token = git.token;
        self.git_username = git.username;
        self.git_password = git.password;
        self
    }

    /// The git credentials given, for [`GitCredentials::into_auth`].
    pub fn git_credentials(&self) -> GitCredentials {
        GitCredentials {
            ssh_key: self.ssh_key.clone(),
            known_hosts: self.known_hosts.clone(),
            ssh_passphrase: self.ssh_passphrase.clone(),
            token: self.git_token.clone(),
            username: self.git_username.clone(),
            password: self.git_password.clone(),
        }
    }

    /// [`with_env`](Self::with_env) over the process environment.
    pub fn with_process_env(self) -> Self {
        self.with_env(&|name| std::env::var(name).ok())
    }

    /// Checks that the options hold together (a checkout or a URL, not both; a branch only
    /// with a URL).
    pub fn validate(&self) -> Result<(), String> {
        if self.root.is_some() && self.url.is_some() {
            return Err("give a checkout (root) or a url, not both".into());
        }
        if self.branch.is_some() && self.url.is_none() {
            return Err("branch goes with url (the branch to clone)".into());
        }
        if self.branch_per_policy && !self.pull_request {
            return Err("branch_per_policy goes with pull_request".into());
        }
        if let Some(forge) = &self.forge {
            forge
                .parse::<tagsmith_forge::ForgeKind>()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The JSON schema of the configuration: field names, types, defaults and the doc
    /// comments above. The bindings' stubs (`__init__.pyi`, `index.d.ts`) are generated from
    /// it and checked against it by their tests; path fields carry `"x-path": true`.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(RunConfig)).unwrap_or_default()
    }

    /// The checkout to work in (`.` when neither `root` nor `url` is given).
    pub fn root_or_default(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    /// The scan cache folder: `cache_dir`, else `$XDG_CACHE_HOME/tagsmith`, else
    /// `~/.cache/tagsmith`; `None` with `no_cache` or a snapshot (offline tags are not
    /// cached).
    pub fn effective_cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache || self.snapshot.is_some() {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("tagsmith"))
        })
    }
}

/// Git credentials before validation. [`into_auth`](Self::into_auth) picks, in order: an
/// SSH key (which needs known hosts: host keys are always checked), a token (HTTPS, user
/// `username` or `x-access-token`, as GitHub and GitLab accept), a username with a
/// password, or none. On the command line only the key and known_hosts paths are flags:
/// secret values come from the environment, never from flags other users can read in the
/// process list. [`RunConfig`] holds them flat (`ssh_key`, `git_token`...).
#[derive(Clone, Default)]
pub struct GitCredentials {
    /// Private key file.
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file.
    pub known_hosts: Option<PathBuf>,
    /// Key passphrase.
    pub ssh_passphrase: Option<Secret>,
    /// HTTPS token.
    pub token: Option<Secret>,
    /// HTTPS user.
    pub username: Option<String>,
    /// HTTPS password.
    pub password: Option<Secret>,
}

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredentials")
            .field("ssh_key", &self.ssh_key)
            .field("known_hosts", &self.known_hosts)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl GitCredentials {
    /// Fills what is not set from the `TAGSMITH_GIT_*` variables read through `env`.
    pub fn with_env(mut self, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env_value(env, name);
        self.ssh_key = self
            .ssh_key
            .or_else(|| var("TAGSMITH_GIT_SSH_KEY").map(PathBuf::from));
        self.known_hosts = self
            .known_hosts
            .or_else(|| var("TAGSMITH_GIT_KNOWN_HOSTS").map(PathBuf::from));
        self.ssh_passphrase = self
            .ssh_passphrase
            .or_else(|| var("TAGSMITH_GIT_SSH_PASSPHRASE").map(Secret::new));
        self.token = self
            .token
            .or_else(|| var("TAGSMITH_GIT_TOKEN").map(Secret::new));
        self.username = self.username.or_else(|| var("TAGSMITH_GIT_USERNAME"));
        self.password = self
            .password
            .or_else(|| var("TAGSMITH_GIT_PASSWORD").map(Secret::new));
        self
    }

    /// Validates and builds the transport credentials; the known_hosts file is read here.
    pub fn into_auth(self) -> Result<GitAuth, RunError> {
        let invalid = |message: &str| RunError::Credentials {
            message: message.to_string(),
        };
        if let Some(key) = self.ssh_key {
            let Some(hosts) = self.known_hosts else {
                return Err(invalid(
                    "an SSH key needs known hosts (--known-hosts or TAGSMITH_GIT_KNOWN_HOSTS): host keys are always checked",
                ));
            };
            let known_hosts = std::fs::read_to_string(&hosts).map_err(|e| RunError::Io {
                path: hosts.clone(),
                message: e.to_string(),
            })?;
            return Ok(GitAuth::SshKey {
                username: "git".into(),
                private_key: KeySource::Path(key),
                passphrase: self.ssh_passphrase,
                known_hosts,
            });
        }
        if let Some(token) = self.token {
            return Ok(GitAuth::Basic {
                username: self.username.unwrap_or_else(|| "x-access-token".into()),
                password: token,
            });
        }
        match (self.username, self.password) {
            (Some(username), Some(password)) => Ok(GitAuth::Basic { username, password }),
            (Some(_), None) | (None, Some(_)) => Err(invalid(
                "a git username and password go together (TAGSMITH_GIT_USERNAME and TAGSMITH_GIT_PASSWORD), or set a token (TAGSMITH_GIT_TOKEN)",
            )),
            (None, None) => Ok(GitAuth::None),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn auth(pairs: &[(&str, &str)]) -> Result<GitAuth, RunError> {
        GitCredentials::default().with_env(&env(pairs)).into_auth()
    }

    #[test]
    fn given_values_win_over_the_environment() {
        let config = RunConfig {
            docker_config: Some("/given".into()),
            ..RunConfig::default()
        }
        .with_env(&env(&[
            ("TAGSMITH_DOCKER_CONFIG", "/env"),
            ("TAGSMITH_SECRETS_DIR", "/secrets"),
            ("TAGSMITH_CACHE_DIR", ""),
        ]));
        assert_eq!(config.docker_config, Some("/given".into()));
        assert_eq!(config.secrets_dir, Some("/secrets".into()));
        // Empty is unset.
        assert_eq!(config.cache_dir, None);
    }

    #[test]
    fn token_wins_over_user_and_password_and_prints_redacted() {
        let auth = auth(&[
            ("TAGSMITH_GIT_TOKEN", "t0k"),
            ("TAGSMITH_GIT_PASSWORD", "pw"),
        ])
        .unwrap();
        assert!(matches!(&auth, GitAuth::Basic { username, .. } if username == "x-access-token"));
        assert!(!format!("{auth:?}").contains("t0k"));
    }

    #[test]
    fn half_a_credential_is_refused() {
        let err = auth(&[("TAGSMITH_GIT_USERNAME", "me")]).unwrap_err();
        assert_eq!(err.code(), "credentials");
        let err = auth(&[("TAGSMITH_GIT_SSH_KEY", "/k")]).unwrap_err();
        assert!(err.to_string().contains("known hosts"), "{err}");
        assert_eq!(auth(&[]).unwrap(), GitAuth::None);
    }

    #[test]
    fn configuration_round_trips_without_its_secrets() {
        let mut config = RunConfig::for_root("/repo");
        config.git_token = Some(Secret::new("t0k"));
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("t0k"), "{json}");
        assert!(json.contains("<redacted>"));
        let defaults: RunConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(defaults.remote, "origin");
        assert_eq!(defaults.max_push_attempts, 3);
        assert!(defaults.push);
    }

    #[test]
    fn no_cache_and_snapshots_disable_the_cache() {
        let mut config = RunConfig {
            cache_dir: Some("/c".into()),
            ..RunConfig::default()
        };
        assert_eq!(config.effective_cache_dir(), Some("/c".into()));
        config.no_cache = true;
        assert_eq!(config.effective_cache_dir(), None);
        config.no_cache = false;
        config.snapshot = Some("tags.yaml".into());
        assert_eq!(config.effective_cache_dir(), None);
    }
}
