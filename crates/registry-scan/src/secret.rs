//! Credentials, which never print.

use std::path::PathBuf;

pub use tagsmith_secret::Secret;

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
    /// The text of a Docker `config.json` held in memory (a Kubernetes secret's
    /// `.dockerconfigjson` key read from elsewhere); `source` names it in errors.
    DockerConfigJson {
        /// Where it came from, e.g. `secret flux-system:regcred`.
        source: String,
        /// The JSON.
        json: Secret,
    },
}
