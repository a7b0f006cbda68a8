//! Credentials from a Docker `config.json`: `auths` entries (`auth` as base64
//! `user:password`, or `username`/`password`, or `identitytoken`), then `credHelpers` per
//! registry and `credsStore` for all, by running `docker-credential-<helper> get`.
//!
//! Written here rather than with the `docker_credential` crate: that crate reads the file
//! from `$DOCKER_CONFIG` only and offers no way to name the file, which a Kubernetes secret
//! mounted anywhere needs; the format is small and documented.

use crate::error::clip;
use crate::secret::{Credentials, Secret};
use crate::ScanError;
use base64::Engine;
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The largest Docker config read (a Kubernetes secret holds at most 1 MiB).
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// How long a `docker-credential-*` helper may run.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The most a helper may print on stdout (or stderr); its answer is a small JSON object.
const HELPER_OUTPUT_BYTES: u64 = 64 * 1024;

/// One `auths` entry; only the fields we use.
#[derive(Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The parts of `config.json` we use.
#[derive(Default)]
struct ConfigFile {
    /// `(key as written, entry)`, in file order.
    auths: Vec<(String, AuthEntry)>,
    cred_helpers: Vec<(String, String)>,
    creds_store: Option<String>,
}

/// A credential file's parse errors name the file, the entry and what is wrong, and never
/// any part of a value: `serde_json`'s own messages can quote the input (`invalid type:
/// string "dXNlcjpw..."`), so the file is read as a plain [`Value`] (whose syntax errors
/// quote nothing; we keep only their line and column) and checked field by field.
fn parse_config(text: &str) -> Result<ConfigFile, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "ends early",
            _ => "is not valid JSON",
        };
        format!(
            "not a Docker config.json: the file {what} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let Value::Object(top) = value else {
        return Err("not a Docker config.json: the top level is not a JSON object".into());
    };
    let mut config = ConfigFile::default();
    if let Some(auths) = top.get("auths") {
        for (key, entry) in object(auths, "auths")? {
            let at = format!("auths[{:?}]", clip(key));
            let entry = object(entry, &at)?;
            config.auths.push((
                key.clone(),
                AuthEntry {
                    auth: string(entry, "auth", &at)?,
                    username: string(entry, "username", &at)?,
                    password: string(entry, "password", &at)?,
                    identitytoken: string(entry, "identitytoken", &at)?,
                },
            ));
        }
    }
    if let Some(helpers) = top.get("credHelpers") {
        for (key, helper) in object(helpers, "credHelpers")? {
            let at = format!("credHelpers[{:?}]", clip(key));
            let Value::String(helper) = helper else {
                return Err(format!("{at} is not a string"));
            };
            config.cred_helpers.push((key.clone(), helper.clone()));
        }
    }
    config.creds_store = string(&top, "credsStore", "the top level")?;
    Ok(config)
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(format!("{at} is not a JSON object")),
    }
}

/// An optional string field; `null` counts as absent.
fn string(map: &Map<String, Value>, field: &str, at: &str) -> Result<Option<String>, String> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{at}.{field} is not a string")),
    }
}

/// Reads at most [`MAX_CONFIG_BYTES`] of UTF-8.
fn read_config(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "not a Docker config.json: larger than {} MiB",
            MAX_CONFIG_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not a Docker config.json: not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The credentials the config file holds for `registry` (`Anonymous` when none).
///
/// Errors name the file and the entry (`auths["reg.example.com"].auth is not valid
/// base64`), never a value from it. A credential helper runs for at most 30 s and may print
/// at most 64 KiB.
pub fn credentials_for(path: &Path, registry: &str) -> Result<Credentials, ScanError> {
    let text = read_config(path).map_err(|message| ScanError::Config {
        path: path.display().to_string(),
        message,
    })?;
    credentials_from_json(&path.display().to_string(), &text, registry)
}

/// The credentials a Docker config's text holds for `registry`; `source` names the text in
/// errors (a file, a secret). The same rules as [`credentials_for`]: errors never quote a
/// value.
pub fn credentials_from_json(
    source: &str,
    text: &str,
    registry: &str,
) -> Result<Credentials, ScanError> {
    let config_error = |message: String| ScanError::Config {
        path: source.to_string(),
        message,
    };
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(config_error(format!(
            "not a Docker config.json: larger than {} MiB",
            MAX_CONFIG_BYTES >> 20
        )));
    }
    let config = parse_config(text).map_err(config_error)?;
    let wanted = normalize(registry);
    if let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(host, _)| normalize(host) == wanted)
    {
        let at = format!("auths[{:?}]", clip(key));
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
            // The decoders' own errors name the offending byte: not repeated.
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| config_error(format!("{at}.auth is not valid base64")))?;
            let decoded = String::from_utf8(decoded).map_err(|_| {
                config_error(format!("{at}.auth is not UTF-8 once decoded from base64"))
            })?;
            let (username, password) = decoded.split_once(':').ok_or_else(|| {
                config_error(format!(
                    "{at}.auth is not base64 of user:password (no colon)"
                ))
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
        Some(helper) => {
            run_helper(&helper, registry, HELPER_TIMEOUT, HELPER_OUTPUT_BYTES).map_err(config_error)
        }
        None => Ok(Credentials::Anonymous),
    }
}

/// Reads at most `limit + 1` bytes of `from` on a thread; the pipe closes when done, so a
/// helper that keeps printing gets EPIPE instead of filling our memory.
fn read_bounded(
    from: Option<impl Read + Send + 'static>,
    limit: u64,
) -> std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(from) = from {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let result = from.take(limit + 1).read_to_end(&mut out).map(|_| out);
            let _ = tx.send(result);
        });
    } else {
        let _ = tx.send(Ok(Vec::new()));
    }
    rx
}

/// `docker-credential-<helper> get`, the registry on stdin, JSON on stdout; killed after
/// `timeout`, refused when it prints more than `limit` bytes.
fn run_helper(
    helper: &str,
    registry: &str,
    timeout: Duration,
    limit: u64,
) -> Result<Credentials, String> {
    // A helper name is a program-name suffix: a `/` would run any path.
    if helper.is_empty()
        || helper.len() > 64
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(
            "credHelpers/credsStore names a helper that is not a plain name \
             (letters, digits, '-', '_', '.'; at most 64)"
                .into(),
        );
    }
    let program = format!("docker-credential-{helper}");
    let start = Instant::now();
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin is fine: its answer decides.
        let _ = stdin.write_all(registry.as_bytes());
    }
    let stdout = read_bounded(child.stdout.take(), limit);
    let stderr = read_bounded(child.stderr.take(), limit);
    let timed_out = || {
        format!(
            "{program} get did not finish within {} s; killed it",
            timeout.as_secs()
        )
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(timed_out());
            }
            Err(e) => return Err(format!("{program}: {e}")),
        }
    };
    // A helper's own child may hold the pipes open: wait for them no longer than the rest
    // of the timeout.
    let collect = |rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>| {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(Ok(out)) if out.len() as u64 > limit => {
                Err(format!("{program} get printed more than {limit} bytes"))
            }
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(format!("{program}: {e}")),
            Err(_) => Err(timed_out()),
        }
    };
    let out = collect(stdout)?;
    let err = collect(stderr)?;
    if !status.success() {
        // The helper says "credentials not found" when it has none: that means anonymous.
        if String::from_utf8_lossy(&err).contains("not found")
            || String::from_utf8_lossy(&out).contains("not found")
        {
            return Ok(Credentials::Anonymous);
        }
        return Err(format!("{program} get failed ({status})"));
    }
    let answer: Value =
        serde_json::from_slice(&out).map_err(|_| format!("{program} get did not print JSON"))?;
    let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_string);
    match (field("Username"), field("Secret")) {
        (Some(username), Some(secret)) => Ok(Credentials::Basic {
            username,
            password: Secret::new(secret),
        }),
        _ => Err(format!(
            "{program} get did not print {{\"Username\": ..., \"Secret\": ...}}"
        )),
    }
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
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    /// The error for `json`, which must name the file and say `wanted`, and must not hold
    /// `secret` (a value from the file).
    fn refused(json: &str, wanted: &str, secret: &str) {
        let f = config(json);
        let err = credentials_for(f.path(), "reg.example.com").expect_err(json);
        let line = err.to_string();
        assert_eq!(err.code(), "config");
        assert!(line.contains(&f.path().display().to_string()), "{line}");
        assert!(line.contains(wanted), "{line}");
        assert!(!line.contains(secret), "the file's content leaked: {line}");
        assert!(
            !format!("{err:?}").contains(secret),
            "leaked in Debug: {err:?}"
        );
    }

    #[test]
    fn an_auths_entry_that_is_a_bare_base64_string_is_not_echoed() {
        refused(
            r#"{"auths": {"reg.example.com": "cm9ib3Q6aHVudGVyMg=="}}"#,
            r#"auths["reg.example.com"] is not a JSON object"#,
            "cm9ib3Q6aHVudGVyMg",
        );
    }

    #[test]
    fn a_numeric_password_is_not_echoed() {
        refused(
            r#"{"auths": {"reg.example.com": {"username": "robot", "password": 73571337}}}"#,
            r#"auths["reg.example.com"].password is not a string"#,
            "73571337",
        );
    }

    #[test]
    fn a_numeric_creds_store_is_not_echoed() {
        refused(
            r#"{"credsStore": 73571337}"#,
            "credsStore is not a string",
            "73571337",
        );
    }

    #[test]
    fn auth_that_is_not_base64_names_the_entry_not_the_value() {
        refused(
            r#"{"auths": {"reg.example.com": {"auth": "hunter2-is-not-base64!"}}}"#,
            r#"auths["reg.example.com"].auth is not valid base64"#,
            "hunter2",
        );
    }

    #[test]
    fn auth_without_a_colon_names_the_entry_not_the_value() {
        // base64("robothunter2"): no `user:password` separator.
        refused(
            r#"{"auths": {"https://reg.example.com/v1/": {"auth": "cm9ib3RodW50ZXIy"}}}"#,
            r#"auths["https://reg.example.com/v1/"].auth is not base64 of user:password"#,
            "cm9ib3RodW50ZXIy",
        );
    }

    #[test]
    fn auth_that_decodes_to_invalid_utf8_names_the_entry_not_the_value() {
        // base64 of the bytes ff fe 3a 41.
        refused(
            r#"{"auths": {"reg.example.com": {"auth": "//46QQ=="}}}"#,
            r#"auths["reg.example.com"].auth is not UTF-8"#,
            "//46QQ",
        );
    }

    #[test]
    fn a_syntax_error_next_to_a_credential_is_not_echoed() {
        refused(
            r#"{"auths": {"reg.example.com": {"auth": "cm9ib3Q6aHVudGVyMg==" "x"}}}"#,
            "is not valid JSON (line 1, column",
            "cm9ib3Q6aHVudGVyMg",
        );
        refused(
            r#"{"auths": {"reg.example.com": {"auth": "cm9ib3Q6aHVudGVyMg=="#,
            "ends early",
            "cm9ib3Q6aHVudGVyMg",
        );
    }

    #[test]
    fn a_config_that_is_not_utf8_is_refused_without_echo() {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(b"{\"auths\": {\"r\": {\"auth\": \"cm9ib3Q6\xff\"}}}")
            .expect("write");
        let err = credentials_for(f.path(), "r").expect_err("not UTF-8");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(!err.to_string().contains("cm9ib3Q6"), "{err}");
    }

    #[test]
    fn a_huge_config_is_refused_before_parsing() {
        let f = config(&format!(
            r#"{{"auths": {{}}, "pad": "{}"}}"#,
            "x".repeat(MAX_CONFIG_BYTES as usize)
        ));
        let err = credentials_for(f.path(), "r").expect_err("too large");
        assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
    }

    /// A helper script `docker-credential-<name>` in a fresh folder.
    fn helper(name: &str, body: &str) -> tempfile::TempDir {
        let bin = tempfile::tempdir().expect("tempdir");
        let path = bin.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write helper");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        bin
    }

    fn with_path<T>(bin: &tempfile::TempDir, f: impl FnOnce() -> T) -> T {
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        temp_env_path(&path, f)
    }

    #[test]
    fn a_hanging_credential_helper_is_killed_after_the_timeout() {
        let bin = helper("tagsmith-hang", "exec sleep 600");
        let err = with_path(&bin, || {
            run_helper(
                "tagsmith-hang",
                "reg.example.com",
                Duration::from_secs(1),
                1024,
            )
        })
        .expect_err("killed");
        assert!(err.contains("did not finish within 1 s"), "{err}");
    }

    #[test]
    fn a_credential_helper_that_prints_without_end_is_cut_off() {
        let bin = helper("tagsmith-flood", "exec yes '{\"Username\": \"u\"}'");
        let err = with_path(&bin, || {
            run_helper(
                "tagsmith-flood",
                "reg.example.com",
                Duration::from_secs(60),
                1024,
            )
        })
        .expect_err("cut off");
        assert!(err.contains("printed more than 1024 bytes"), "{err}");
    }

    #[test]
    fn a_helper_name_that_is_a_path_is_refused() {
        refused(
            r#"{"credsStore": "../../../tmp/evil"}"#,
            "not a plain name",
            "evil",
        );
    }
}
