//! Image references (`[registry[:port]/]path[:tag][@digest]`) and the policy table.

use crate::text::clip;
use crate::SetterError;
use std::collections::BTreeMap;
use std::fmt;

/// A parsed image reference, following the Docker/OCI reference grammar: an optional
/// registry host (with a dot or port, or `localhost`), a lowercase path of one or more
/// components, an optional tag and an optional `algorithm:hex` digest.
///
/// ```
/// use tagsmith_marker_setter::ImageRef;
/// let r = ImageRef::parse("reg.example.com:5000/team/app:1.2.3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap();
/// assert_eq!(r.name(), "reg.example.com:5000/team/app");
/// assert_eq!(r.tag(), Some("1.2.3"));
/// assert!(r.digest().unwrap().starts_with("sha256:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses and validates a reference.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty".into());
        }
        if s.len() > 4096 {
            return Err("longer than 4096 characters".into());
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            validate_tag(tag)?;
        }
        validate_name(name)?;
        Ok(ImageRef {
            name: name.to_string(),
            tag,
            digest,
        })
    }

    /// The repository name, with registry (`reg.example.com/team/app`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:...`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {:?}", clip(tag)))
    }
}

fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "invalid digest {:?}: expected ALGORITHM:HEX",
            clip(digest)
        ));
    };
    let algorithm_ok = !algorithm.is_empty()
        && algorithm.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'+' | b'.' | b'_' | b'-')
        });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit());
    let sha256_ok =
        algorithm != "sha256" || (hex.len() == 64 && hex.bytes().all(|c| !c.is_ascii_uppercase()));
    if algorithm_ok && hex_ok && sha256_ok {
        Ok(())
    } else {
        Err(format!("invalid digest {:?}", clip(digest)))
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing repository name".into());
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let has_registry = components.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if has_registry {
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        let host_ok = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        let port_ok = port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|c| c.is_ascii_digit()));
        if !host_ok || !port_ok {
            return Err(format!("invalid registry host {:?}", clip(first)));
        }
        components.remove(0);
    }
    for component in components {
        let ok = !component.is_empty()
            && component
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component
                .bytes()
                .last()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && component.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            });
        if !ok {
            return Err(format!(
                "invalid path component {:?} (lowercase letters, digits and . _ - only)",
                clip(component)
            ));
        }
    }
    Ok(())
}

/// The policies a rewrite may use: `namespace:name` to the image reference it selected.
///
/// ```
/// use tagsmith_marker_setter::Policies;
/// let mut policies = Policies::new();
/// policies.insert("flux-system:app", "reg.example.com/team/app:1.4.2").unwrap();
/// assert!(policies.insert("no-namespace", "app:1").is_err());
/// assert!(policies.insert("flux-system:bad", "Not A Ref").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    map: BTreeMap<String, ImageRef>,
}

impl Policies {
    /// No policies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a policy; the key must be `namespace:name`, the value an image reference.
    pub fn insert(&mut self, key: impl Into<String>, reference: &str) -> Result<(), SetterError> {
        let key = key.into();
        let valid_key = key
            .split_once(':')
            .is_some_and(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'));
        if !valid_key {
            return Err(SetterError::InvalidPolicyKey {
                key: clip(&key).into_owned(),
            });
        }
        let parsed = ImageRef::parse(reference).map_err(|reason| SetterError::InvalidImageRef {
            policy: clip(&key).into_owned(),
            reference: clip(reference).into_owned(),
            reason,
        })?;
        self.map.insert(key, parsed);
        Ok(())
    }

    /// Builds the table from `(key, reference)` pairs.
    pub fn from_map<K, V, I>(pairs: I) -> Result<Self, SetterError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        let mut policies = Policies::new();
        for (k, v) in pairs {
            policies.insert(k, v.as_ref())?;
        }
        Ok(policies)
    }

    /// The reference for `namespace:name`.
    pub fn get(&self, key: &str) -> Option<&ImageRef> {
        self.map.get(key)
    }

    /// All policies, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ImageRef)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many policies there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_flux_users_write() {
        let cases = [
            ("nginx", "nginx", None, None),
            ("nginx:1.25", "nginx", Some("1.25"), None),
            ("library/nginx:1", "library/nginx", Some("1"), None),
            (
                "ghcr.io/org/team/app:v1.2.3",
                "ghcr.io/org/team/app",
                Some("v1.2.3"),
                None,
            ),
            (
                "localhost:5000/app:1",
                "localhost:5000/app",
                Some("1"),
                None,
            ),
            ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b", None, None),
        ];
        for (input, name, tag, digest) in cases {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(
                (r.name(), r.tag(), r.digest()),
                (name, tag, digest),
                "{input}"
            );
            assert_eq!(r.to_string(), input);
        }
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "app/UPPER",
            "app:",
            "app:-bad",
            "reg.example.com/",
            "a//b",
            "app@sha256:abc",
            "app@md5",
            "reg..io/app",
            "app:tag with space",
            "-app",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
    }
}
