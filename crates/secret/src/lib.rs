//! A secret string for every tagsmith crate: `Debug`, `Display` and `Serialize` print
//! `<redacted>`, so a credential cannot reach a log line, an error message or a JSON report
//! by accident. The one place that sends it calls [`Secret::expose`].
//!
//! ```
//! use tagsmith_secret::Secret;
//! let token = Secret::new("ghp_123");
//! assert_eq!(format!("{token} {token:?}"), "<redacted> <redacted>");
//! assert_eq!(serde_json::to_string(&token).unwrap(), "\"<redacted>\"");
//! let read: Secret = serde_json::from_str("\"ghp_123\"").unwrap();
//! assert_eq!(read.expose(), "ghp_123");
//! ```

use std::fmt;

/// A secret string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one call that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it holds any text.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Serialises as `"<redacted>"`: a report or a configuration dump never carries it.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// Reads the plain string (configuration given by a program or a binding).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}
