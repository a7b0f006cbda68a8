//! Real git remotes on this machine: bare repositories reached over `file://`, and the
//! same served by `git daemon --enable=receive-pack` on 127.0.0.1 (stopped on drop).

use crate::registry::{free_port, wait_for_port};
use crate::tools::require;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Runs `git` in `dir` with a fixed identity; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(require("git"))
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bare repository in a temp dir, seeded from a tree of files with one commit on `main`.
pub struct BareRemote {
    dir: tempfile::TempDir,
    /// The bare repository's path.
    pub path: PathBuf,
}

impl BareRemote {
    /// A bare remote whose `main` holds `files` (relative path, content).
    pub fn with_files(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("remote.git");
        git(
            dir.path(),
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                path.to_str().expect("utf8"),
            ],
        );
        let seed = dir.path().join("seed");
        git(
            dir.path(),
            &["clone", "-q", path.to_str().expect("utf8"), "seed"],
        );
        for (rel, content) in files {
            let file = seed.join(rel);
            std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
            std::fs::write(file, content).expect("write");
        }
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "--allow-empty", "-m", "initial"]);
        git(&seed, &["push", "-q", "origin", "HEAD:main"]);
        BareRemote { dir, path }
    }

    /// A plain seed tree copied from `root` (every file under it).
    pub fn from_tree(root: &Path) -> Self {
        let mut files = Vec::new();
        collect(root, root, &mut files);
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        Self::with_files(&borrowed)
    }

    /// `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    /// A fresh clone in a new folder under the remote's temp dir.
    pub fn clone_to(&self, name: &str) -> PathBuf {
        let dest = self.dir.path().join(name);
        git(
            self.dir.path(),
            &["clone", "-q", &self.url(), dest.to_str().expect("utf8")],
        );
        dest
    }

    /// A fresh clone whose `origin` is the remote's plain path (`/tmp/.../remote.git`),
    /// not a `file://` URL.
    pub fn clone_path_to(&self, name: &str) -> PathBuf {
        let dest = self.dir.path().join(name);
        git(
            self.dir.path(),
            &[
                "clone",
                "-q",
                self.path.to_str().expect("utf8"),
                dest.to_str().expect("utf8"),
            ],
        );
        dest
    }

    /// Installs an executable hook (`pre-receive`, `post-receive`, ...) running `script`
    /// (a shell script body, without the `#!` line).
    pub fn hook(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path.join("hooks").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write hook");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// A pre-receive hook that refuses every push, printing `message` (to stderr, which
    /// receive-pack relays to the client as `remote:` lines).
    pub fn reject_pushes(&self, message: &str) {
        self.hook(
            "pre-receive",
            &format!("cat >/dev/null\necho '{message}' >&2\nexit 1"),
        );
    }

    /// The tip of `branch` on the remote, if the branch exists.
    pub fn tip(&self, branch: &str) -> Option<String> {
        let out = Command::new(require("git"))
            .args(["rev-parse", "--verify", "-q"])
            .arg(format!("refs/heads/{branch}"))
            .current_dir(&self.path)
            .output()
            .expect("run git");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Whether the remote holds object `id` (a commit pushed to it, or not).
    pub fn has_object(&self, id: &str) -> bool {
        Command::new(require("git"))
            .args(["cat-file", "-e", id])
            .current_dir(&self.path)
            .status()
            .expect("run git")
            .success()
    }

    /// The folder holding the remote (its temp dir): serve it with `git daemon` or HTTP.
    pub fn base(&self) -> &Path {
        self.dir.path()
    }

    /// `git log --format=%s` of a branch on the remote, newest first.
    pub fn log(&self, branch: &str) -> Vec<String> {
        git(&self.path, &["log", "--format=%s", branch])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A file's content on a branch of the remote.
    pub fn show(&self, branch: &str, file: &str) -> String {
        git(&self.path, &["show", &format!("{branch}:{file}")])
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(content) = std::fs::read_to_string(&path) {
            let rel = path
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            out.push((rel, content));
        }
    }
}

/// `git daemon` serving a folder of bare repositories with push enabled.
pub struct GitDaemon {
    child: Child,
    /// The port on 127.0.0.1.
    pub port: u16,
}

impl GitDaemon {
    /// Serves `base` (its bare repos become `git://127.0.0.1:PORT/<name>`).
    pub fn start(base: &Path) -> Self {
        let port = free_port();
        let child = Command::new(require("git"))
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start git daemon");
        wait_for_port(port, "git daemon", &String::new);
        GitDaemon { child, port }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Git's smart HTTP protocol on loopback, as Git hosts serve it: Debian's `lighttpd` runs
/// `git http-backend` over a folder of bare repositories and requires HTTP basic auth for
/// every request (so pushes carry credentials the way a CI token does). Plain HTTP: the
/// credentials path is the same as over HTTPS. Stopped on drop.
pub struct HttpGitServer {
    child: Child,
    _dir: tempfile::TempDir,
    /// The port.
    pub port: u16,
}

impl HttpGitServer {
    /// Serves the bare repositories in `base` at `http://127.0.0.1:PORT/git/<name>` for
    /// `user` with `password`.
    pub fn start(base: &Path, user: &str, password: &str) -> Self {
        let lighttpd = require("lighttpd");
        let backend = [
            "/usr/lib/git-core/git-http-backend",
            "/usr/libexec/git-core/git-http-backend",
        ]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("git-http-backend is not installed: run `make setup`");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::write(p.join("users"), format!("{user}:{password}\n")).expect("users");
        let port = free_port();
        let config = format!(
            r#"server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{root}/error.log"
server.modules = ("mod_alias", "mod_setenv", "mod_cgi", "mod_auth", "mod_authn_file")
alias.url = ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
    cgi.assign = ("" => "")
    setenv.set-environment = ("GIT_PROJECT_ROOT" => "{base}", "GIT_HTTP_EXPORT_ALL" => "")
}}
auth.backend = "plain"
auth.backend.plain.userfile = "{root}/users"
auth.require = ("/git" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
"#,
            root = p.display(),
            backend = backend.display(),
            base = base.display(),
        );
        std::fs::write(p.join("lighttpd.conf"), config).expect("lighttpd.conf");
        let child = Command::new(lighttpd)
            .args(["-D", "-f"])
            .arg(p.join("lighttpd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lighttpd");
        wait_for_port(port, "lighttpd", &|| {
            std::fs::read_to_string(p.join("error.log")).unwrap_or_default()
        });
        HttpGitServer {
            child,
            _dir: dir,
            port,
        }
    }

    /// `http://127.0.0.1:PORT/git/<name>`, without credentials.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}", self.port)
    }
}

impl Drop for HttpGitServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenSSH server on 127.0.0.1 (a high port), with its own host key and one authorized
/// user key, both generated in a temp dir; git runs over it as the current user. Stopped
/// on drop.
pub struct SshServer {
    child: Child,
    dir: tempfile::TempDir,
    /// The port.
    pub port: u16,
}

impl SshServer {
    /// Starts sshd authorizing a freshly generated user key.
    pub fn start() -> Self {
        let sshd = require("sshd");
        let keygen = require("ssh-keygen");
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        for (name, kind) in [("host_key", "ed25519"), ("user_key", "ed25519")] {
            let status = Command::new(&keygen)
                .args(["-q", "-t", kind, "-N", "", "-f"])
                .arg(p.join(name))
                .status()
                .expect("ssh-keygen");
            assert!(status.success());
        }
        std::fs::copy(p.join("user_key.pub"), p.join("authorized_keys")).expect("authorized_keys");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\nPidFile {pid}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nSubsystem sftp internal-sftp\n",
            host = p.join("host_key").display(),
            auth = p.join("authorized_keys").display(),
            pid = p.join("sshd.pid").display(),
        );
        std::fs::write(p.join("sshd_config"), config).expect("sshd_config");
        // sshd wants its privilege-separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(p.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        wait_for_port(port, "sshd", &String::new);
        SshServer { child, dir, port }
    }

    /// The user's private key file.
    pub fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// A `known_hosts` line for this server.
    pub fn known_hosts(&self) -> String {
        let public =
            std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("host key");
        let mut parts = public.split_whitespace();
        let (kind, blob) = (parts.next().expect("kind"), parts.next().expect("blob"));
        format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)
    }

    /// The current user's name (sshd logs in as them).
    pub fn user() -> String {
        std::env::var("USER").unwrap_or_else(|_| "root".into())
    }

    /// `ssh://user@127.0.0.1:PORT/<absolute path>`.
    pub fn url(&self, path: &Path) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            Self::user(),
            self.port,
            path.display()
        )
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
