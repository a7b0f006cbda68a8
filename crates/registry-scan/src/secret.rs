//! Credentials, which never print.

use std::fmt;
use std::path::PathBuf;

/// A secret string: `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to authenticate to a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials (public images; bearer tokens are still fetched anonymously).
    #[default]
    Anonymous,
    /// Username and password (basic, or exchanged for a bearer token when challenged).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: Secret,
    },
    /// A ready bearer token.
    Bearer(Secret),
    /// A Docker `config.json` (`auths`, `credHelpers`, `credsStore`), as in a Kubernetes
    /// `kubernetes.io/dockerconfigjson` secret.
    DockerConfig(PathBuf),
}
