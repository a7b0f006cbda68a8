//! A real Gitea (1.26, built by `make setup-tools` into the tool cache) on 127.0.0.1: sqlite
//! in a temp dir, one admin user with an API token, repositories created through its API,
//! pushed to over HTTP with the git CLI. Stopped on drop.

use crate::registry::free_port;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin user every instance has.
pub const ADMIN: &str = "tagsmith-admin";
const ADMIN_PASSWORD: &str = "tagsmith-test-password-1";

/// A running Gitea; stopped and deleted on drop.
pub struct Gitea {
    child: Child,
    dir: tempfile::TempDir,
    bin: PathBuf,
    config: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin's API token (scope `all`).
    pub token: String,
}

/// Where `make setup-tools` puts Gitea: `${TAGSMITH_TOOLS_DIR:-$HOME/.cache/tagsmith-tools}/gitea`.
pub fn tool_dir() -> PathBuf {
    crate::tools::tools_dir().join("gitea")
}

/// The tool, or the one-line skip ([`crate::tools::skip_missing`]): a missing tool skips
/// the test unless `TAGSMITH_REQUIRE_REAL=1` (CI), where it fails it.
fn require_or_skip(bin: &Path) -> bool {
    if bin.is_file() {
        return true;
    }
    crate::tools::skip_missing("gitea");
    false
}

impl Gitea {
    /// Starts Gitea on a free loopback port; `None` (after one line saying so) when it is
    /// not installed.
    pub fn start() -> Option<Gitea> {
        let tools = tool_dir();
        let bin = tools.join("gitea");
        if !require_or_skip(&bin) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("tagsmith-gitea-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let config = dir.path().join("custom/conf/app.ini");
        std::fs::create_dir_all(config.parent().expect("conf dir")).expect("create conf dir");
        std::fs::write(&config, app_ini(dir.path(), &tools, port)).expect("write app.ini");

        let gitea = |args: &[&str]| {
            let out = Command::new(&bin)
                .args(["--config"])
                .arg(&config)
                .args(["--work-path"])
                .arg(dir.path())
                .args(args)
                .env("HOME", dir.path())
                .env("GITEA_WORK_DIR", dir.path())
                .output()
                .expect("run gitea");
            assert!(
                out.status.success(),
                "gitea {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        gitea(&["migrate"]);
        gitea(&[
            "admin",
            "user",
            "create",
            "--admin",
            "--username",
            ADMIN,
            "--password",
            ADMIN_PASSWORD,
            "--email",
            "admin@tagsmith.test",
            "--must-change-password=false",
        ]);
        let token = gitea(&[
            "admin",
            "user",
            "generate-access-token",
            "--username",
            ADMIN,
            "--token-name",
            "tagsmith-tests",
            "--scopes",
            "all",
            "--raw",
        ]);
        let token = token.lines().last().unwrap_or_default().trim().to_string();
        assert!(!token.is_empty(), "gitea printed no access token");

        let child = Command::new(&bin)
            .args(["--config"])
            .arg(&config)
            .args(["--work-path"])
            .arg(dir.path())
            .arg("web")
            .env("HOME", dir.path())
            .env("GITEA_WORK_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gitea web");
        let mut gitea = Gitea {
            child,
            dir,
            bin,
            config,
            url,
            token,
        };
        gitea.wait_ready();
        Some(gitea)
    }

    fn wait_ready(&mut self) {
        // About 2 s when the machine is idle; generous for a loaded CI machine.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("gitea web exited with {status}: {err}{}", self.log_tail());
            }
            let (status, _) = self.request("GET", "/api/v1/version", None, Some(&self.token));
            if status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "gitea did not answer /api/v1/version within 90 s{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("log/gitea.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "\n--- gitea.log (last lines) ---\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    /// The API base, `http://127.0.0.1:PORT/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.url)
    }

    /// Calls the API as the admin: `(status, JSON body or Null)`.
    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.request(method, &format!("/api/v1{path}"), body, Some(&self.token))
    }

    /// Calls `path` (from the root) with `token` if any: `(status, JSON body or Null)`.
    /// Status 0: no connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url);
        let auth = token.map(|t| format!("token {t}"));
        let timeout = Some(Duration::from_secs(30));
        let result = match method {
            "GET" | "DELETE" => {
                let mut req = if method == "GET" {
                    ureq::get(&url)
                } else {
                    ureq::delete(&url)
                };
                if let Some(auth) = &auth {
                    req = req.header("Authorization", auth);
                }
                req.config()
                    .http_status_as_error(false)
                    .timeout_global(timeout)
                    .build()
                    .call()
            }
            _ => {
                let mut req = match method {
                    "POST" => ureq::post(&url),
                    "PATCH" => ureq::patch(&url),
                    "PUT" => ureq::put(&url),
                    other => panic!("unsupported method {other}"),
                };
                if let Some(auth) = &auth {
                    req = req.header("Authorization", auth);
                }
                req.header("Content-Type", "application/json")
                    .config()
                    .http_status_as_error(false)
                    .timeout_global(timeout)
                    .build()
                    .send(body.map(Value::to_string).unwrap_or_default().as_bytes())
            }
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    /// Creates `ADMIN/name` with a first commit on `main`; returns `owner/name`.
    pub fn create_repo(&self, name: &str) -> String {
        let (status, body) = self.api(
            "POST",
            "/user/repos",
            Some(&serde_json::json!({
                "name": name,
                "auto_init": true,
                "default_branch": "main",
                "readme": "Default",
            })),
        );
        assert_eq!(status, 201, "create repository {name}: {body}");
        format!("{ADMIN}/{name}")
    }

    /// Creates a label in `repo` (`owner/name`).
    pub fn create_label(&self, repo: &str, name: &str) {
        let (status, body) = self.api(
            "POST",
            &format!("/repos/{repo}/labels"),
            Some(&serde_json::json!({ "name": name, "color": "#00aabb" })),
        );
        assert_eq!(status, 201, "create label {name}: {body}");
    }

    /// Creates a user (not an admin) and returns its API token (scope `all`).
    pub fn create_user(&self, name: &str) -> String {
        let (status, body) = self.api(
            "POST",
            "/admin/users",
            Some(&serde_json::json!({
                "username": name,
                "password": ADMIN_PASSWORD,
                "email": format!("{name}@tagsmith.test"),
                "must_change_password": false,
            })),
        );
        assert_eq!(status, 201, "create user {name}: {body}");
        let out = Command::new(&self.bin)
            .args(["--config"])
            .arg(&self.config)
            .args(["--work-path"])
            .arg(self.dir.path())
            .args([
                "admin",
                "user",
                "generate-access-token",
                "--username",
                name,
                "--token-name",
                "tagsmith-tests",
                "--scopes",
                "all",
                "--raw",
            ])
            .env("HOME", self.dir.path())
            .env("GITEA_WORK_DIR", self.dir.path())
            .output()
            .expect("run gitea");
        assert!(
            out.status.success(),
            "token for {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Adds `user` to `repo` as a collaborator with write access.
    pub fn add_collaborator(&self, repo: &str, user: &str) {
        let (status, body) = self.api(
            "PUT",
            &format!("/repos/{repo}/collaborators/{user}"),
            Some(&serde_json::json!({ "permission": "write" })),
        );
        assert_eq!(status, 204, "add collaborator {user}: {body}");
    }

    /// The git URL of `repo` with the admin's credentials in it, to push to.
    pub fn git_url(&self, repo: &str) -> String {
        let host = self.url.trim_start_matches("http://");
        format!("http://{ADMIN}:{ADMIN_PASSWORD}@{host}/{repo}.git")
    }

    /// Pushes a branch `branch` to `repo`, made from `main` plus one commit that writes
    /// `content` to `file`, with the git CLI over HTTP.
    pub fn push_branch(&self, repo: &str, branch: &str, file: &str, content: &str) {
        let work = tempfile::tempdir().expect("tempdir");
        let git = |args: &[&str]| {
            let out = Command::new(crate::tools::require("git"))
                .args([
                    "-c",
                    "user.name=tagsmith test",
                    "-c",
                    "user.email=test@tagsmith.test",
                    "-c",
                    "init.defaultBranch=main",
                ])
                .args(args)
                .current_dir(work.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .expect("run git");
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let url = self.git_url(repo);
        git(&["clone", "-q", "--branch", "main", &url, "."]);
        git(&["checkout", "-q", "-B", branch]);
        std::fs::write(work.path().join(file), content).expect("write file");
        git(&["add", file]);
        git(&["commit", "-q", "-m", &format!("update {file}")]);
        git(&["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
    }
}

impl Drop for Gitea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn app_ini(dir: &Path, tools: &Path, port: u16) -> String {
    let dir = dir.display();
    // Everything that would reach past loopback is off: update checks, avatars, mail.
    format!(
        r#"I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true
APP_NAME = tagsmith test
RUN_MODE = prod
WORK_PATH = {dir}

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {port}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:{port}/
STATIC_ROOT_PATH = {tools}
APP_DATA_PATH = {dir}/data
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = {dir}/data/gitea.db

[repository]
ROOT = {dir}/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = tagsmith-test-secret-key

[service]
DISABLE_REGISTRATION = true
ENABLE_NOTIFY_MAIL = false

[mailer]
ENABLED = false

[picture]
DISABLE_GRAVATAR = true
ENABLE_FEDERATED_AVATAR = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[cron.update_checker]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[log]
MODE = file
LEVEL = Warn
ROOT_PATH = {dir}/log
"#,
        tools = tools.display()
    )
}
