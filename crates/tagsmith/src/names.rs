//! Kubernetes object names, validated as the API server validates them, before any use.
//!
//! Object names and namespaces come from a repository, i.e. from whoever can open a pull
//! request. They select secrets and key caches, so a name such as `../flux-system/regcred`
//! or `/../home/.docker/config` must never reach a path. The API server would refuse such an
//! object; so does tagsmith, for that object alone.
//!
//! ```
//! use tagsmith::names::{ObjectKey, validate_name, validate_namespace};
//! assert!(validate_name("app.v2-canary").is_ok());
//! assert!(validate_name("../flux-system/regcred").is_err());
//! assert!(validate_namespace("flux-system").is_ok());
//! assert!(validate_namespace("Flux").is_err());
//! let key = ObjectKey::new("flux-system", "app").unwrap();
//! assert_eq!(key.to_string(), "flux-system:app");
//! ```

use serde::Serialize;
use std::fmt;

/// The longest DNS-1123 subdomain (object names of the Flux kinds and Secrets).
pub const MAX_NAME_LEN: usize = 253;
/// The longest DNS-1123 label (namespaces).
pub const MAX_NAMESPACE_LEN: usize = 63;

fn label_ok(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Why a name is refused, in the API server's words.
fn describe(value: &str) -> String {
    let shown: String = value.chars().take(80).collect();
    let more = if value.chars().count() > 80 {
        "..."
    } else {
        ""
    };
    format!("{shown:?}{more}")
}

/// Checks an object name: a DNS-1123 subdomain (lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit, at most 253 characters), as Kubernetes
/// requires for ImageRepository, ImagePolicy, ImageUpdateAutomation, GitRepository and Secret
/// names.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "{} is longer than {MAX_NAME_LEN} characters",
            describe(name)
        ));
    }
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid Kubernetes name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
            describe(name)
        ))
    }
}

/// Checks a namespace: a DNS-1123 label (lowercase letters, digits and `-`, starting and
/// ending with a letter or digit, at most 63 characters).
pub fn validate_namespace(namespace: &str) -> Result<(), String> {
    if namespace.len() > MAX_NAMESPACE_LEN {
        return Err(format!(
            "{} is longer than {MAX_NAMESPACE_LEN} characters",
            describe(namespace)
        ));
    }
    if label_ok(namespace) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a valid Kubernetes namespace: lowercase letters, digits and '-', starting and ending with a letter or digit",
            describe(namespace)
        ))
    }
}

/// Checks the key of a Secret's data (`[-._a-zA-Z0-9]+`, not `.` or `..`), as Kubernetes
/// does: keys become file names when a secret is mounted.
pub fn validate_secret_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key != "."
        && key != ".."
        && key.len() <= MAX_NAME_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("{} is not a valid secret key", describe(key)))
    }
}

/// A validated `namespace` + `name`: only values that passed [`validate_namespace`] and
/// [`validate_name`] can be held, so code that builds a path from one is safe by type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    namespace: String,
    name: String,
}

impl ObjectKey {
    /// Validates both parts.
    pub fn new(namespace: &str, name: &str) -> Result<Self, String> {
        validate_namespace(namespace).map_err(|e| format!("namespace {e}"))?;
        validate_name(name).map_err(|e| format!("name {e}"))?;
        Ok(ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `namespace:name`, the form setter markers use.
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_a_folder_are_refused() {
        for hostile in [
            "../flux-system/regcred",
            "/../victimhome/.docker/config",
            "..",
            ".",
            "a/b",
            "a\\b",
            "",
            "A",
            "-a",
            "a-",
            "a..b",
            "a\0b",
        ] {
            assert!(validate_name(hostile).is_err(), "{hostile:?}");
            assert!(validate_namespace(hostile).is_err(), "{hostile:?}");
        }
        assert!(validate_name(&"a".repeat(254)).is_err());
        assert!(validate_namespace(&"a".repeat(64)).is_err());
        assert!(validate_namespace("a.b").is_err());
    }

    #[test]
    fn kubernetes_names_pass() {
        for ok in ["app", "app-1", "app.v2", "1app", &"a".repeat(253)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        assert!(validate_namespace("flux-system").is_ok());
        assert!(validate_namespace(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn secret_keys_as_kubernetes_takes_them() {
        for ok in [
            ".dockerconfigjson",
            "ca.crt",
            "identity",
            "known_hosts",
            "git.asc",
        ] {
            assert!(validate_secret_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert!(validate_secret_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_are_bounded_in_length() {
        let long = format!("../{}", "x".repeat(100_000));
        let message = validate_name(&long).unwrap_err();
        assert!(message.len() < 200, "{}", message.len());
    }
}
