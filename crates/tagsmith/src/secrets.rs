//! Where the secrets that Flux objects name come from: one [`SecretStore`] trait, with a
//! folder of files ([`SecretsDir`], what a Kubernetes secret volume mounts) and an in-memory
//! map ([`MapSecrets`]) here; the controller adds the cluster's Secrets.
//!
//! Secrets are looked up by an [`ObjectKey`] (a validated namespace and name) and a
//! validated key, always in the namespace of the object that names them, so repository
//! content can neither point outside the store nor read another namespace's secret.
//!
//! ```
//! use tagsmith::names::ObjectKey;
//! use tagsmith::secrets::{MapSecrets, SecretStore};
//! let store = MapSecrets::default().with("team-a", "regcred", ".dockerconfigjson", "{}");
//! let key = ObjectKey::new("team-a", "regcred").unwrap();
//! assert_eq!(store.get(&key, ".dockerconfigjson").unwrap().unwrap().expose(), "{}");
//! assert!(store.get(&ObjectKey::new("flux-system", "regcred").unwrap(), ".dockerconfigjson").unwrap().is_none());
//! ```

use crate::names::{validate_secret_key, ObjectKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagsmith_git_commit::Secret;

/// The largest secret value read (Docker configs and CA bundles are a few KiB).
pub const MAX_SECRET_BYTES: u64 = 1024 * 1024;

/// Why a secret could not be read. Never holds the secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret {secret} key {key}: {reason}")]
pub struct SecretError {
    /// `namespace:name` of the secret.
    pub secret: String,
    /// The key.
    pub key: String,
    /// What went wrong (no content of the secret).
    pub reason: String,
}

/// A source of Kubernetes-style secrets.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The value of `key` in the secret `secret`; `Ok(None)` when the secret or the key
    /// does not exist.
    fn get(&self, secret: &ObjectKey, key: &str) -> Result<Option<Secret>, SecretError>;
}

/// No secrets at all (the default without `--secrets-dir`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSecrets;

impl SecretStore for NoSecrets {
    fn get(&self, _: &ObjectKey, _: &str) -> Result<Option<Secret>, SecretError> {
        Ok(None)
    }
}

/// `DIR/<namespace>/<name>/<key>`, one file per key, as `--secrets-dir` lays them out.
/// The folder is the operator's (trusted, and Kubernetes mounts use symlinks inside it);
/// the names are the repository's and are validated before they become path components.
#[derive(Debug, Clone)]
pub struct SecretsDir {
    root: PathBuf,
}

impl SecretsDir {
    /// A store over `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SecretsDir { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl SecretStore for SecretsDir {
    fn get(&self, secret: &ObjectKey, key: &str) -> Result<Option<Secret>, SecretError> {
        let error = |reason: String| SecretError {
            secret: secret.to_string(),
            key: key.chars().take(80).collect(),
            reason,
        };
        validate_secret_key(key).map_err(error)?;
        let path = self
            .root
            .join(secret.namespace())
            .join(secret.name())
            .join(key);
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(format!("{}: {e}", path.display()))),
        };
        if !meta.is_file() {
            return Err(error(format!("{} is not a regular file", path.display())));
        }
        if meta.len() > MAX_SECRET_BYTES {
            return Err(error(format!(
                "{} is larger than {MAX_SECRET_BYTES} bytes",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| error(format!("{}: {e}", path.display())))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| error(format!("{} is not UTF-8 text", path.display())))?;
        Ok(Some(Secret::new(text)))
    }
}

/// Secrets held in memory: for programs that fetch them elsewhere, and for tests.
#[derive(Debug, Clone, Default)]
pub struct MapSecrets {
    values: BTreeMap<(String, String, String), Secret>,
}

impl MapSecrets {
    /// Adds `key` = `value` to the secret `namespace/name`.
    pub fn with(mut self, namespace: &str, name: &str, key: &str, value: &str) -> Self {
        self.insert(namespace, name, key, value);
        self
    }

    /// Adds `key` = `value` to the secret `namespace/name`.
    pub fn insert(&mut self, namespace: &str, name: &str, key: &str, value: &str) {
        self.values.insert(
            (namespace.into(), name.into(), key.into()),
            Secret::new(value),
        );
    }
}

impl SecretStore for MapSecrets {
    fn get(&self, secret: &ObjectKey, key: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self
            .values
            .get(&(
                secret.namespace().to_string(),
                secret.name().to_string(),
                key.to_string(),
            ))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_secrets_dir_reads_one_file_per_key_in_the_objects_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("team-a/regcred");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join(".dockerconfigjson"), "{\"auths\":{}}").unwrap();
        let store = SecretsDir::new(dir.path());
        let key = ObjectKey::new("team-a", "regcred").unwrap();
        assert_eq!(
            store
                .get(&key, ".dockerconfigjson")
                .unwrap()
                .unwrap()
                .expose(),
            "{\"auths\":{}}"
        );
        assert!(store.get(&key, "ca.crt").unwrap().is_none());
        let other = ObjectKey::new("flux-system", "regcred").unwrap();
        assert!(store.get(&other, ".dockerconfigjson").unwrap().is_none());
    }

    #[test]
    fn a_key_that_would_leave_the_secret_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretsDir::new(dir.path());
        let key = ObjectKey::new("team-a", "regcred").unwrap();
        let err = store.get(&key, "../../flux-system/regcred/.dockerconfigjson");
        assert!(err.unwrap_err().reason.contains("not a valid secret key"));
    }

    #[test]
    fn special_files_and_huge_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("ns/s");
        std::fs::create_dir_all(base.join("folder")).unwrap();
        let store = SecretsDir::new(dir.path());
        let key = ObjectKey::new("ns", "s").unwrap();
        assert!(store
            .get(&key, "folder")
            .unwrap_err()
            .reason
            .contains("not a regular file"));
        std::fs::write(base.join("big"), vec![b'x'; MAX_SECRET_BYTES as usize + 1]).unwrap();
        assert!(store
            .get(&key, "big")
            .unwrap_err()
            .reason
            .contains("larger"));
    }
}
