//! A real OCI registry: Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1,
//! on a free port, storing into a temp dir, optionally behind htpasswd basic auth.
//! Note: distribution 2.8 returns every tag in one response and ignores `n`; paging is
//! tested against [`crate::http::FaultServer`].

use crate::tools::require;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry; stopped and deleted on drop.
pub struct LocalRegistry {
    child: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub host: String,
    auth: Option<(String, String)>,
}

/// A free loopback port (bound then released; the registry binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something listens on 127.0.0.1:`port` (at most 10 s); `what` names the
/// server and `diagnose` adds its log to the failure.
pub fn wait_for_port(port: u16, what: &str, diagnose: &dyn Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port}: {}",
            diagnose()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl LocalRegistry {
    /// Starts an open registry.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a registry that requires basic auth with this user.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_with(Some((user.to_string(), password.to_string())))
    }

    fn start_with(auth: Option<(String, String)>) -> Self {
        let bin = require("docker-registry");
        // Storage on tmpfs when there is one: the registry writes a few small files per
        // tag, and creating and deleting tens of thousands of them on a disk under load
        // took a minute where tmpfs takes a second.
        let dir = tempfile::Builder::new()
            .prefix("tagsmith-registry-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("tempdir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = &auth {
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: tagsmith-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start docker-registry");
        let mut registry = LocalRegistry {
            child,
            _dir: dir,
            host,
            auth,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("docker-registry exited with {status}: {err}");
            }
            // Any HTTP answer (200, or 401 with auth) means it is serving.
            if ureq::get(&format!("http://{}/v2/", self.host))
                .config()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(1)))
                .build()
                .call()
                .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not answer on {} within 20 s",
            self.host
        );
    }

    fn request(&self, method: &str, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let req = match method {
            "PUT" => ureq::put(url),
            _ => ureq::post(url),
        };
        match &self.auth {
            Some((u, p)) => {
                use base64_encode as b64;
                req.header(
                    "Authorization",
                    &format!("Basic {}", b64(&format!("{u}:{p}"))),
                )
            }
            None => req,
        }
    }

    fn upload_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = format!("sha256:{:x}", Sha256::digest(data));
        let start = self
            .request(
                "POST",
                &format!("http://{}/v2/{repo}/blobs/uploads/", self.host),
            )
            .send_empty()
            .expect("start blob upload");
        let location = start
            .headers()
            .get("Location")
            .and_then(|l| l.to_str().ok())
            .expect("upload location")
            .to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.host)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        self.request("PUT", &format!("{url}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(data)
            .expect("finish blob upload");
        digest
    }

    /// Uploads the blobs of one small image to `repo`; returns its manifest (not yet pushed).
    fn image_manifest(&self, repo: &str) -> String {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = b"tagsmith test layer";
        let config_digest = self.upload_blob(repo, config);
        let layer_digest = self.upload_blob(repo, layer);
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        })
        .to_string()
    }

    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &str) {
        self.request(
            "PUT",
            &format!("http://{}/v2/{repo}/manifests/{reference}", self.host),
        )
        .header("Content-Type", media_type)
        .send(body.as_bytes())
        .unwrap_or_else(|e| panic!("push {repo}:{reference}: {e}"));
    }

    /// Pushes one small image to `repo` under every tag in `tags`; returns its manifest
    /// digest. Tags are plain PUTs of the same manifest, so thousands take seconds.
    pub fn seed(&self, repo: &str, tags: &[String]) -> String {
        let manifest = self.image_manifest(repo);
        let digest = format!("sha256:{:x}", Sha256::digest(manifest.as_bytes()));
        // A few PUTs in flight at once: the registry stores each tag as a small link file.
        let chunk = tags.len().div_ceil(8).max(1);
        std::thread::scope(|scope| {
            for part in tags.chunks(chunk) {
                let manifest = &manifest;
                scope.spawn(move || {
                    for tag in part {
                        self.put_manifest(
                            repo,
                            tag,
                            "application/vnd.oci.image.manifest.v1+json",
                            manifest,
                        );
                    }
                });
            }
        });
        digest
    }

    /// Pushes a multi-arch image (an OCI index over linux/amd64 and linux/arm64) as
    /// `repo:tag`; returns `(index digest, platform manifest digest)`.
    pub fn seed_index(&self, repo: &str, tag: &str) -> (String, String) {
        let manifest = self.image_manifest(repo);
        let manifest_digest = format!("sha256:{:x}", Sha256::digest(manifest.as_bytes()));
        self.put_manifest(
            repo,
            &manifest_digest,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        );
        let entry = |arch: &str| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [entry("amd64"), entry("arm64")],
        })
        .to_string();
        self.put_manifest(repo, tag, "application/vnd.oci.image.index.v1+json", &index);
        (
            format!("sha256:{:x}", Sha256::digest(index.as_bytes())),
            manifest_digest,
        )
    }
}

fn base64_encode(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = s.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
