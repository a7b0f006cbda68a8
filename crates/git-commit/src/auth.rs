//! Credentials for git remotes: SSH keys (file or in memory, with passphrase) checked
//! against `known_hosts` (fail closed: an unknown or different host key stops the
//! connection), and HTTPS basic auth or tokens. Secrets never print.

use std::cell::Cell;
use std::path::PathBuf;

pub use tagsmith_secret::Secret;

/// Where an SSH private key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file (Flux secret key `identity` mounted as a file).
    Path(PathBuf),
    /// The PEM/OpenSSH text itself.
    InMemory(Secret),
}

/// How to authenticate to a remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GitAuth {
    /// No credentials (file://, git://, public HTTPS).
    #[default]
    None,
    /// SSH with a private key; `known_hosts` (OpenSSH format, plain host names) is required.
    SshKey {
        /// User when the URL has none (Flux: `git`).
        username: String,
        /// The private key.
        private_key: KeySource,
        /// Its passphrase, if encrypted.
        passphrase: Option<Secret>,
        /// Accepted host keys, `known_hosts` format.
        known_hosts: String,
    },
    /// HTTPS basic auth; a token goes in `password`.
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: Secret,
    },
}

/// How many times libgit2 may ask for credentials before giving up (it asks again after
/// each rejection).
const MAX_CREDENTIAL_TRIES: u32 = 3;

impl GitAuth {
    /// Every secret value these credentials hold, for scrubbing messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            GitAuth::None => Vec::new(),
            GitAuth::SshKey {
                private_key,
                passphrase,
                ..
            } => {
                let mut out: Vec<&str> = passphrase.iter().map(Secret::expose).collect();
                if let KeySource::InMemory(key) = private_key {
                    out.extend(
                        key.expose()
                            .lines()
                            .map(str::trim)
                            .filter(|l| l.len() > 16 && !l.starts_with("-----")),
                    );
                }
                out
            }
            GitAuth::Basic { password, .. } => vec![password.expose()],
        }
    }

    /// Remote callbacks carrying these credentials and the host-key check.
    pub(crate) fn callbacks(&self) -> git2::RemoteCallbacks<'_> {
        let mut callbacks = git2::RemoteCallbacks::new();
        let tries = Cell::new(0u32);
        callbacks.credentials(move |_url, username_from_url, allowed| {
            tries.set(tries.get() + 1);
            if tries.get() > MAX_CREDENTIAL_TRIES {
                return Err(git2::Error::from_str("the remote rejected the credentials"));
            }
            match self {
                GitAuth::None => Err(git2::Error::from_str(
                    "the remote asks for credentials and none are configured",
                )),
                GitAuth::SshKey {
                    username,
                    private_key,
                    passphrase,
                    ..
                } if allowed.contains(git2::CredentialType::SSH_KEY) => {
                    let user = username_from_url.unwrap_or(username);
                    let pass = passphrase.as_ref().map(Secret::expose);
                    match private_key {
                        KeySource::Path(path) => git2::Cred::ssh_key(user, None, path, pass),
                        KeySource::InMemory(key) => {
                            git2::Cred::ssh_key_from_memory(user, None, key.expose(), pass)
                        }
                    }
                }
                GitAuth::Basic { username, password }
                    if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) =>
                {
                    git2::Cred::userpass_plaintext(username, password.expose())
                }
                _ => Err(git2::Error::from_str(
                    "the remote asks for a kind of credentials that is not configured",
                )),
            }
        });
        callbacks.certificate_check(move |cert, host| {
            let Some(hostkey) = cert.as_hostkey() else {
                // TLS: let libgit2 verify the chain as usual.
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            let GitAuth::SshKey { known_hosts, .. } = self else {
                return Err(git2::Error::from_str(&format!(
                    "SSH host {host}: no known_hosts configured; refusing to connect"
                )));
            };
            let Some(key) = hostkey.hostkey() else {
                return Err(git2::Error::from_str(&format!(
                    "SSH host {host}: no host key offered"
                )));
            };
            if known_host_matches(known_hosts, host, key) {
                Ok(git2::CertificateCheckStatus::CertificateOk)
            } else {
                Err(git2::Error::from_str(&format!(
                    "SSH host {host}: its host key is not in known_hosts; refusing to connect"
                )))
            }
        });
        callbacks
    }
}

/// Whether `known_hosts` lists `key` (raw blob) for `host` (`host`, `[host]:port`, or a
/// comma-separated list of them). Hashed entries (`|1|...`) are not supported.
fn known_host_matches(known_hosts: &str, host: &str, key: &[u8]) -> bool {
    use base64::Engine;
    known_hosts.lines().any(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return false;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(blob)) = (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        let host_ok = hosts.split(',').any(|h| {
            let h = h.trim_start_matches('[');
            let h = h.split(']').next().unwrap_or(h);
            h == host
        });
        host_ok
            && base64::engine::general_purpose::STANDARD
                .decode(blob)
                .is_ok_and(|decoded| decoded == key)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_matching() {
        let key = b"key-bytes";
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let file = format!("# comment\n[127.0.0.1]:2222 ssh-ed25519 {b64}\ngit.example.com,10.0.0.1 ssh-rsa AAAA\n");
        assert!(known_host_matches(&file, "127.0.0.1", key));
        assert!(!known_host_matches(&file, "127.0.0.2", key));
        assert!(!known_host_matches(&file, "127.0.0.1", b"other"));
        assert!(!known_host_matches("", "127.0.0.1", key));
    }

    #[test]
    fn secrets_do_not_print() {
        let auth = GitAuth::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
