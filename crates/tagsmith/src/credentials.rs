//! Explicit git credentials for clone and push, as the CLI and the bindings take them:
//! given values win over the `TAGSMITH_GIT_*` environment.
//!
//! ```
//! use tagsmith::credentials::GitCredentials;
//! use tagsmith::git::GitAuth;
//! let env = |name: &str| (name == "TAGSMITH_GIT_TOKEN").then(|| "t0k".to_string());
//! let auth = GitCredentials::from_env(&env).into_auth().unwrap();
//! assert!(matches!(auth, GitAuth::Basic { ref username, .. } if username == "x-access-token"));
//! assert!(!format!("{auth:?}").contains("t0k")); // secrets never print
//! ```

use crate::RunError;
use std::path::PathBuf;
use tagsmith_git_commit::{GitAuth, KeySource, Secret};

/// Git credentials before validation. [`into_auth`](Self::into_auth) picks, in order: an
/// SSH key (which needs known hosts: host keys are always checked), a token (HTTPS, user
/// `username` or `x-access-token`, as GitHub and GitLab accept), a username with a
/// password, or none.
#[derive(Default, Clone)]
pub struct GitCredentials {
    /// Private key file (`TAGSMITH_GIT_SSH_KEY`).
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file (`TAGSMITH_GIT_KNOWN_HOSTS`).
    pub known_hosts: Option<PathBuf>,
    /// Key passphrase (`TAGSMITH_GIT_SSH_PASSPHRASE`).
    pub ssh_passphrase: Option<Secret>,
    /// HTTPS token (`TAGSMITH_GIT_TOKEN`).
    pub token: Option<Secret>,
    /// HTTPS user (`TAGSMITH_GIT_USERNAME`).
    pub username: Option<String>,
    /// HTTPS password (`TAGSMITH_GIT_PASSWORD`).
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
    /// Reads the `TAGSMITH_GIT_*` variables through `env` (unset or empty: absent).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        GitCredentials {
            ssh_key: var("TAGSMITH_GIT_SSH_KEY").map(PathBuf::from),
            known_hosts: var("TAGSMITH_GIT_KNOWN_HOSTS").map(PathBuf::from),
            ssh_passphrase: var("TAGSMITH_GIT_SSH_PASSPHRASE").map(Secret::new),
            token: var("TAGSMITH_GIT_TOKEN").map(Secret::new),
            username: var("TAGSMITH_GIT_USERNAME"),
            password: var("TAGSMITH_GIT_PASSWORD").map(Secret::new),
        }
    }

    /// Reads the process environment.
    pub fn from_process_env() -> Self {
        Self::from_env(&|name| std::env::var(name).ok())
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
        GitCredentials::from_env(&env(pairs)).into_auth()
    }

    #[test]
    fn credentials_from_the_environment() {
        assert_eq!(auth(&[]).unwrap(), GitAuth::None);
        assert_eq!(auth(&[("TAGSMITH_GIT_TOKEN", "")]).unwrap(), GitAuth::None);
        let token = auth(&[("TAGSMITH_GIT_TOKEN", "t0k")]).unwrap();
        let GitAuth::Basic { username, password } = &token else {
            panic!("{token:?}")
        };
        assert_eq!(
            (username.as_str(), password.expose()),
            ("x-access-token", "t0k")
        );
        assert!(!format!("{token:?}").contains("t0k"), "secrets never print");
        let basic = auth(&[
            ("TAGSMITH_GIT_USERNAME", "bot"),
            ("TAGSMITH_GIT_PASSWORD", "pw"),
        ])
        .unwrap();
        assert!(matches!(basic, GitAuth::Basic { ref username, .. } if username == "bot"));
        let half = auth(&[("TAGSMITH_GIT_USERNAME", "bot")]).unwrap_err();
        assert!(half.to_string().contains("go together"), "{half}");
        assert_eq!(half.code(), "credentials");
        assert!(half.is_invalid_input());
    }

    #[test]
    fn an_ssh_key_wins_and_needs_known_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("known_hosts");
        std::fs::write(&hosts, "[127.0.0.1]:22 ssh-ed25519 AAAA\n").unwrap();
        let key = dir.path().join("id");
        let vars = [
            ("TAGSMITH_GIT_SSH_KEY", key.to_str().unwrap()),
            ("TAGSMITH_GIT_KNOWN_HOSTS", hosts.to_str().unwrap()),
            ("TAGSMITH_GIT_TOKEN", "ignored: the SSH key wins"),
        ];
        let ssh = auth(&vars).unwrap();
        assert!(
            matches!(&ssh, GitAuth::SshKey { private_key: KeySource::Path(p), known_hosts, .. }
                if *p == key && known_hosts.contains("ssh-ed25519")),
            "{ssh:?}"
        );
        // Given values win over the environment.
        let mut credentials = GitCredentials::from_env(&env(&vars));
        let flag_key = dir.path().join("flag_id");
        credentials.ssh_key = Some(flag_key.clone());
        assert!(matches!(
            credentials.into_auth().unwrap(),
            GitAuth::SshKey { private_key: KeySource::Path(p), .. } if p == flag_key
        ));
        let err = auth(&[("TAGSMITH_GIT_SSH_KEY", "/k")]).unwrap_err();
        assert!(err.to_string().contains("needs known hosts"), "{err}");
        let missing = auth(&[
            ("TAGSMITH_GIT_SSH_KEY", "/k"),
            ("TAGSMITH_GIT_KNOWN_HOSTS", "/no/such/known_hosts"),
        ])
        .unwrap_err();
        assert!(
            missing.to_string().starts_with("/no/such/known_hosts:"),
            "{missing}"
        );
    }
}
