//! Where a remote is and how to reach it: every push and fetch goes through git's own
//! `receive-pack`/`upload-pack`, local remotes included, so a server's hooks run for a
//! plain-path or `file://` remote exactly as over `ssh://` or `git://`; and what an error
//! may say about it (never a credential).
//!
//! libgit2's built-in local transport copies objects and updates refs itself: a
//! `pre-receive` hook on `/srv/gitops.git` never runs, and its policy is skipped. So local
//! remotes are rewritten to a private URL scheme served by a smart subtransport that
//! spawns `git upload-pack`/`git receive-pack <path>` and streams their stdin/stdout, as
//! the ssh transport does with a remote shell. The scheme is private rather than a
//! takeover of `file://`: clones and any other libgit2 user in the process keep
//! libgit2's own behaviour for `file://`.

use crate::auth::GitAuth;
use crate::GitError;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// The private scheme local remotes are rewritten to (`tagsmith-local:///srv/x.git`).
const LOCAL_SCHEME: &str = "tagsmith-local";

/// How much of a spawned git's stderr is kept for an error message.
const STDERR_KEPT: usize = 4096;

/// How long a finished `receive-pack`/`upload-pack` may take to exit after its input
/// closed (a slow `post-receive` hook) before it is killed, in 10 ms steps.
const EXIT_WAIT_STEPS: u32 = 3000;

/// Registers the local subtransport once per process; every function of this crate that
/// reaches a libgit2 transport (clone, fetch, push, listing a remote's refs) calls this
/// first.
pub(crate) fn ensure_registered() -> Result<(), GitError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: `git2::transport::register` is unsafe because libgit2 appends to a
            // global list of custom transports without a lock, and a transport lookup
            // running at the same time in another thread would read it mid-update. Every
            // libgit2 transport use in tagsmith goes through this crate (no other crate
            // of the workspace depends on git2), and each such entry point calls
            // `ensure_registered` before it creates a remote or a transport.
            // `OnceLock::get_or_init` runs this closure once and blocks every other
            // caller until it returns, so all lookups made by this crate happen after the
            // registration completed, never during it. Nothing is ever unregistered, so
            // the factory (owned by libgit2 from here on) lives as long as the process.
            #[allow(unsafe_code)]
            let registered = unsafe {
                git2::transport::register(LOCAL_SCHEME, |remote| {
                    git2::transport::Transport::smart(remote, false, LocalPack)
                })
            };
            registered.map_err(|e| e.message().to_string())
        })
        .clone()
        .map_err(|message| GitError::Git {
            context: "registering the local git transport".into(),
            message,
        })
}

/// A remote as this crate reaches it: its name in the user's repository (for the refs a
/// fetch writes there) and where fetches and pushes go.
#[derive(Debug, Clone)]
pub(crate) struct RemoteSpec {
    /// The remote's name (`origin`).
    pub name: String,
    /// Where fetches go.
    pub fetch: Endpoint,
    /// Where pushes go (`remote.NAME.pushurl` when set).
    pub push: Endpoint,
}

/// One URL of a remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A repository on this machine (a plain path or `file://`), reached through git's
    /// receive-pack/upload-pack.
    Local(PathBuf),
    /// Any other URL (`ssh://`, `git://`, `https://`, `host:path`), left to libgit2.
    Network(String),
}

impl Endpoint {
    /// Classifies `url` as git does: `file://` and anything without a scheme and without a
    /// colon before its first slash is a local path (relative ones are taken from
    /// `workdir`); `host:path` is ssh.
    pub(crate) fn parse(url: &str, workdir: &Path) -> Endpoint {
        let lower = url.get(..7).map(str::to_ascii_lowercase);
        if lower.as_deref() == Some("file://") {
            let rest = &url[7..];
            // `file://host/path` names another machine; only the empty host is local.
            if rest.starts_with('/') {
                return Endpoint::Local(PathBuf::from(percent_decode(rest)));
            }
            return Endpoint::Network(url.to_string());
        }
        if url.contains("://") {
            return Endpoint::Network(url.to_string());
        }
        let first_slash = url.find('/').unwrap_or(url.len());
        if url[..first_slash].contains(':') {
            return Endpoint::Network(url.to_string());
        }
        let path = Path::new(url);
        if path.is_absolute() {
            Endpoint::Local(path.to_path_buf())
        } else {
            Endpoint::Local(workdir.join(path))
        }
    }

    /// The URL libgit2 is given for this endpoint.
    pub(crate) fn libgit2_url(&self) -> Result<String, GitError> {
        match self {
            Endpoint::Network(url) => Ok(url.clone()),
            Endpoint::Local(path) => {
                let text = path.to_str().ok_or_else(|| GitError::Git {
                    context: format!("reaching {}", path.display()),
                    message: "the remote's path is not UTF-8".into(),
                })?;
                Ok(format!("{LOCAL_SCHEME}://{text}"))
            }
        }
    }

    /// How the endpoint appears in messages (user info redacted).
    pub(crate) fn display(&self) -> String {
        match self {
            Endpoint::Local(path) => path.display().to_string(),
            Endpoint::Network(url) => redact_urls(url),
        }
    }
}

impl RemoteSpec {
    /// Reads remote `name` from `repo` (URL rewrites such as `insteadOf` applied, as
    /// libgit2 applies them when it loads the remote).
    pub(crate) fn of(repo: &git2::Repository, name: &str) -> Result<Self, GitError> {
        let remote = repo.find_remote(name).map_err(|e| GitError::Git {
            context: format!("finding the remote {name}"),
            message: redact_urls(e.message()),
        })?;
        let workdir = repo.workdir().unwrap_or_else(|| repo.path());
        let url = remote.url().map_err(|e| GitError::Git {
            context: format!("reading the URL of the remote {name}"),
            message: redact_urls(e.message()),
        })?;
        let fetch = Endpoint::parse(url, workdir);
        let push = match remote.pushurl().ok().flatten() {
            Some(push) => Endpoint::parse(push, workdir),
            None => fetch.clone(),
        };
        Ok(RemoteSpec {
            name: name.to_string(),
            fetch,
            push,
        })
    }

    /// A libgit2 remote for fetching (`push == false`) or pushing in `repo`: the named
    /// remote when `repo` has it and the endpoint is a network one (its proxy and other
    /// settings apply), otherwise an anonymous remote at the endpoint's URL.
    pub(crate) fn open<'r>(
        &self,
        repo: &'r git2::Repository,
        push: bool,
    ) -> Result<git2::Remote<'r>, GitError> {
        ensure_registered()?;
        let endpoint = if push { &self.push } else { &self.fetch };
        if matches!(endpoint, Endpoint::Network(_)) {
            if let Ok(remote) = repo.find_remote(&self.name) {
                return Ok(remote);
            }
        }
        let url = endpoint.libgit2_url()?;
        repo.remote_anonymous(&url).map_err(|e| GitError::Git {
            context: format!("reaching {}", endpoint.display()),
            message: redact_urls(e.message()),
        })
    }
}

/// Replaces user info in every URL of `text` (`https://user:token@host` ->
/// `https://<redacted>@host`).
pub(crate) fn redact_urls(text: &str) -> String {
    static USERINFO: OnceLock<regex::Regex> = OnceLock::new();
    let re = USERINFO.get_or_init(|| {
        regex::Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]+@").expect("valid regex")
    });
    re.replace_all(text, "${1}<redacted>@").into_owned()
}

/// `text` with user info in URLs and every secret of `auth` replaced by `<redacted>`: for
/// messages that libgit2 or a remote produced, which may quote a URL or echo input.
pub(crate) fn scrub(text: &str, auth: &GitAuth) -> String {
    let mut out = redact_urls(text);
    for secret in auth.secrets() {
        // A one- or two-character secret would blank out ordinary words; such a secret
        // is not worth protecting this way (and cannot be told apart in a message).
        if secret.len() >= 3 {
            out = out.replace(secret, "<redacted>");
        }
    }
    out
}

/// Go's and git's URL path unescaping: `%XX` -> byte; anything else as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The smart subtransport for local remotes.
struct LocalPack;

impl git2::transport::SmartSubtransport for LocalPack {
    fn action(
        &self,
        url: &str,
        action: git2::transport::Service,
    ) -> Result<Box<dyn git2::transport::SmartSubtransportStream>, git2::Error> {
        use git2::transport::Service;
        let path = url
            .strip_prefix(LOCAL_SCHEME)
            .and_then(|rest| rest.strip_prefix("://"))
            .ok_or_else(|| git2::Error::from_str("not a local remote URL"))?;
        let service = match action {
            Service::UploadPackLs | Service::UploadPack => "upload-pack",
            Service::ReceivePackLs | Service::ReceivePack => "receive-pack",
        };
        Ok(Box::new(GitProcess::spawn(service, Path::new(path))?))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// Variables that would point a spawned git at another repository than the one named
/// on its command line (what git itself clears for its local transport).
const REPO_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_QUARANTINE_PATH",
];

/// `git upload-pack`/`git receive-pack` on a local repository, as a byte stream.
struct GitProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl GitProcess {
    fn spawn(service: &str, path: &Path) -> Result<Self, git2::Error> {
        let mut command = Command::new("git");
        command
            .arg(service)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in REPO_ENV {
            command.env_remove(name);
        }
        let mut child = command.spawn().map_err(|e| {
            git2::Error::from_str(&format!(
                "local remotes are reached through `git {service}`, which could not be started: {e} (is git installed and on PATH?)"
            ))
        })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(git2::Error::from_str("could not connect to a spawned git"));
        };
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&kept);
        // Drained on a thread: a chatty hook must not block on a full pipe while we wait
        // for its report on stdout.
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if let Ok(mut kept) = sink.lock() {
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buffer[..n.min(room)]);
                }
            }
        });
        Ok(GitProcess {
            child,
            stdin: Some(stdin),
            stdout,
            stderr: kept,
            reader: Some(reader),
        })
    }

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|kept| String::from_utf8_lossy(&kept).trim().to_string())
            .unwrap_or_default()
    }
}

impl Read for GitProcess {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            // The process ended before the protocol did: what it printed is the reason
            // ("does not appear to be a git repository").
            if let Some(reader) = self.reader.take() {
                let _ = reader.join();
            }
            let text = self.stderr_text();
            if !text.is_empty() {
                return Err(std::io::Error::other(text));
            }
        }
        Ok(n)
    }
}

impl Write for GitProcess {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.stdin {
            Some(stdin) => stdin.write(buf),
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.stdin {
            Some(stdin) => stdin.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for GitProcess {
    fn drop(&mut self) {
        // Closing its input ends the protocol; the process then exits on its own.
        drop(self.stdin.take());
        let mut exited = false;
        for _ in 0..EXIT_WAIT_STEPS {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                exited = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_network_urls_are_told_apart_as_git_does() {
        let wd = Path::new("/work/repo");
        assert_eq!(
            Endpoint::parse("/srv/x.git", wd),
            Endpoint::Local("/srv/x.git".into())
        );
        assert_eq!(
            Endpoint::parse("file:///srv/my%20x.git", wd),
            Endpoint::Local("/srv/my x.git".into())
        );
        assert_eq!(
            Endpoint::parse("FILE:///srv/x.git", wd),
            Endpoint::Local("/srv/x.git".into())
        );
        assert_eq!(
            Endpoint::parse("../remote.git", wd),
            Endpoint::Local("/work/repo/../remote.git".into())
        );
        for url in [
            "git@github.com:org/repo.git",
            "ssh://git@host/repo",
            "https://host/repo",
            "git://host/repo",
            "file://otherhost/srv/x.git",
        ] {
            assert_eq!(
                Endpoint::parse(url, wd),
                Endpoint::Network(url.into()),
                "{url}"
            );
        }
        // A colon after the first slash is part of a path.
        assert_eq!(
            Endpoint::parse("./a:b", wd),
            Endpoint::Local("/work/repo/./a:b".into())
        );
    }

    #[test]
    fn user_info_in_urls_is_redacted() {
        assert_eq!(
            redact_urls(
                "failed to reach https://bot:t0ken@git.example.com/repo.git and ssh://git@h/x"
            ),
            "failed to reach https://<redacted>@git.example.com/repo.git and ssh://<redacted>@h/x"
        );
        assert_eq!(redact_urls("no url here: a@b"), "no url here: a@b");
    }

    #[test]
    fn secrets_of_the_auth_are_scrubbed_from_messages() {
        let auth = GitAuth::Basic {
            username: "bot".into(),
            password: crate::Secret::new("s3cret-token"),
        };
        assert_eq!(
            scrub("remote: token s3cret-token is not allowed", &auth),
            "remote: token <redacted> is not allowed"
        );
    }

    #[test]
    fn percent_escapes_decode_and_stray_percents_stay() {
        assert_eq!(percent_decode("/a%20b/%zz/%4"), "/a b/%zz/%4");
        assert_eq!(percent_decode("/x%"), "/x%");
    }
}
