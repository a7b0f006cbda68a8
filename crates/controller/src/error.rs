//! Why the controller stops. Problems with one object never stop it: they become that
//! object's Ready=False condition (see [`crate::status`]).

use std::path::PathBuf;

/// Why the controller could not start or had to stop.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum ControllerError {
    /// The flags do not hold together.
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// The kubeconfig (or the in-cluster configuration) is unusable.
    #[error("Kubernetes client configuration {source_name}: {message}")]
    Kubeconfig {
        /// The kubeconfig file, or `in-cluster`.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// The API server refused or did not answer a call the controller cannot do without.
    #[error("Kubernetes API: {message}")]
    Api {
        /// The call and the API server's answer.
        message: String,
    },
    /// A server (metrics, health) could not listen.
    #[error("listening on {addr} for {what}: {message}")]
    Listen {
        /// The address.
        addr: String,
        /// `metrics` or `health`.
        what: &'static str,
        /// The I/O error.
        message: String,
    },
    /// The tag store folder cannot be used.
    #[error("tag store {}: {message}", path.display())]
    Store {
        /// The folder (`--storage-path`).
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// Another replica holds the Lease now (renewal failed for the renew deadline): this
    /// one stopped reconciling at once and the process should exit, as Flux's do.
    #[error("leader election lost: {message}")]
    LeaderElectionLost {
        /// Why (the last renewal error).
        message: String,
    },
}

impl ControllerError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        self.into()
    }

    pub(crate) fn api(context: &str, error: &kube::Error) -> Self {
        ControllerError::Api {
            message: format!("{context}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_snake_case_code() {
        use strum::VariantNames;
        assert!(ControllerError::VARIANTS.contains(&"leader_election_lost"));
        let e = ControllerError::Store {
            path: "/data".into(),
            message: "read-only".into(),
        };
        assert_eq!(e.code(), "store");
        assert_eq!(e.to_string(), "tag store /data: read-only");
    }
}
