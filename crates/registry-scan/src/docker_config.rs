//! Credentials from a Docker `config.json`: `auths` entries (`auth` as base64
//! `user:password`, or `username`/`password`, or `identitytoken`), then `credHelpers` per
//! registry and `credsStore` for all, by running `docker-credential-<helper> get`.
//!
//! Written here rather than with the `docker_credential` crate: that crate reads the file
//! from `$DOCKER_CONFIG` only and offers no way to name the file, which a Kubernetes secret
//! mounted anywhere needs; the format is small and documented.

use crate::secret::{Credentials, Secret};
use crate::ScanError;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The credentials the config file holds for `registry` (`Anonymous` when none).
pub fn credentials_for(path: &Path, registry: &str) -> Result<Credentials, ScanError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScanError::Config {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    credentials_from_json(&path.display().to_string(), &text, registry)
}

/// The credentials a Docker config's text holds for `registry`; `source` names the text in
/// errors (a file, a secret).
pub fn credentials_from_json(
    source: &str,
    text: &str,
    registry: &str,
) -> Result<Credentials, ScanError> {
    let config_error = |message: String| ScanError::Config {
        path: source.to_string(),
        message,
    };
    let config: ConfigFile = serde_json::from_str(text)
        .map_err(|e| config_error(format!("not a Docker config.json: {e}")))?;
    let wanted = normalize(registry);
    if let Some(entry) = config
        .auths
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
        .map(|(_, e)| e)
    {
        if let Some(token) = &entry.identitytoken {
            // An identity token is a refresh token: exchanged with `<token>` as user.
            return Ok(Credentials::Basic {
                username: "<token>".into(),
                password: Secret::new(token.clone()),
            });
        }
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Credentials::Basic {
                username: username.clone(),
                password: Secret::new(password.clone()),
            });
        }
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| config_error(format!("auths[{registry:?}].auth is not base64")))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| config_error(format!("auths[{registry:?}].auth is not UTF-8")))?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                config_error(format!("auths[{registry:?}].auth is not user:password"))
            })?;
            return Ok(Credentials::Basic {
                username: username.to_string(),
                password: Secret::new(password.to_string()),
            });
        }
    }
    let helper = config
        .cred_helpers
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
        .map(|(_, h)| h.clone())
        .or(config.creds_store);
    match helper {
        Some(helper) => run_helper(&helper, registry).map_err(config_error),
        None => Ok(Credentials::Anonymous),
    }
}

/// `docker-credential-<helper> get`, the registry on stdin, JSON on stdout.
fn run_helper(helper: &str, registry: &str) -> Result<Credentials, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        // The helper's stderr may say "credentials not found": that means anonymous.
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("not found")
            || String::from_utf8_lossy(&out.stdout).contains("not found")
        {
            return Ok(Credentials::Anonymous);
        }
        return Err(format!("{program} get failed ({})", out.status));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| format!("{program} get did not print {{\"Username\", \"Secret\"}}"))?;
    Ok(Credentials::Basic {
        username: answer.username,
        password: Secret::new(answer.secret),
    })
}

/// Docker Hub appears under several names; URLs may carry a scheme and path.
fn normalize(host: &str) -> String {
    let host = host
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(json.as_bytes()).expect("write");
        f
    }

    #[test]
    fn auth_field_username_password_and_identity_token() {
        let f = config(
            r#"{"auths": {
                "reg.example.com": {"auth": "dXNlcjpwYXNz"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "secret"},
                "ghcr.io": {"identitytoken": "tok"}
            }}"#,
        );
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.into(),
            password: Secret::new(p),
        };
        assert_eq!(
            credentials_for(f.path(), "reg.example.com").expect("ok"),
            basic("user", "pass")
        );
        assert_eq!(
            credentials_for(f.path(), "docker.io").expect("ok"),
            basic("hub", "secret")
        );
        assert_eq!(
            credentials_for(f.path(), "ghcr.io").expect("ok"),
            basic("<token>", "tok")
        );
        assert_eq!(
            credentials_for(f.path(), "other.io").expect("ok"),
            Credentials::Anonymous
        );
    }

    #[test]
    fn credential_helpers_are_run() {
        let bin = tempfile::tempdir().expect("tempdir");
        let helper = bin.path().join("docker-credential-tagsmith-test");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\necho \"{\\\"Username\\\": \\\"u-$host\\\", \\\"Secret\\\": \\\"s3cret\\\"}\"\n",
        )
        .expect("write helper");
        std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // SAFETY-free: tests in this module run the helper through PATH; set it for the
        // child only by running the lookup with a PATH that includes the helper folder.
        let f = config(r#"{"credHelpers": {"reg.example.com": "tagsmith-test"}}"#);
        let got = temp_env_path(&path, || credentials_for(f.path(), "reg.example.com"));
        assert_eq!(
            got.expect("helper ran"),
            Credentials::Basic {
                username: "u-reg.example.com".into(),
                password: Secret::new("s3cret")
            }
        );
    }

    /// Runs `f` with PATH extended; tests that read PATH are serialised by this lock.
    fn temp_env_path<T>(path: &str, f: impl FnOnce() -> T) -> T {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::env::var_os("PATH");
        #[allow(unsafe_code)]
        // SAFETY: the lock above keeps other tests of this crate from reading PATH now.
        unsafe {
            std::env::set_var("PATH", path)
        };
        let result = f();
        #[allow(unsafe_code)]
        // SAFETY: as above.
        unsafe {
            match old {
                Some(v) => std::env::set_var("PATH", v),
                None => std::env::remove_var("PATH"),
            }
        };
        result
    }

    #[test]
    fn broken_files_name_the_path() {
        let f = config("not json");
        let err = credentials_for(f.path(), "x").expect_err("broken");
        assert!(err.to_string().contains(&f.path().display().to_string()));
        let f = config(r#"{"auths": {"x": {"auth": "!!!"}}}"#);
        assert!(credentials_for(f.path(), "x")
            .expect_err("bad")
            .to_string()
            .contains("base64"));
    }
}
