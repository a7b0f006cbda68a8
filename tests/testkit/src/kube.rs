//! A real Kubernetes API server with Flux's own CRDs, for the controller's tests.
//!
//! [`KubeApiServer::start`] runs Debian's `etcd` and Kubernetes' own `kube-apiserver` (built
//! by `make setup-tools`, see `tests/tools/build.sh`) on free 127.0.0.1 ports in a temp dir:
//! TLS from a throwaway CA (clients verify it), a static admin token in `system:masters`,
//! RBAC on, service-account tokens signed by a generated key. It installs Flux's CRDs
//! (generated from Flux's API types) and waits until they are established and discoverable,
//! writes a kubeconfig, and runs Flux's own `flux` CLI against it. No controller runs: the
//! tests write status themselves, as a controller would, through the `/status` subresource.
//!
//! ```no_run
//! use tagsmith_testkit::kube::KubeApiServer;
//! let Some(kube) = KubeApiServer::start() else { return }; // prints `skipped: ...`
//! kube.create_namespace("apps");
//! kube.apply("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: apps\nspec:\n  image: registry.example/app\n  interval: 5m\n");
//! let Some(out) = kube.flux(&["get", "image", "repository", "-A"]) else { return };
//! assert!(out.status.success(), "{}", out.stderr);
//! ```

use crate::registry::free_port;
use crate::tools::{real_or_skip, require};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The field manager of the harness's server-side applies.
const FIELD_MANAGER: &str = "tagsmith-testkit";

/// At most this many API servers run at once in one test process: each takes a few hundred
/// MB and a core while it starts, and the tests of a file run in parallel on small machines.
const MAX_RUNNING: usize = 2;
static RUNNING: Mutex<usize> = Mutex::new(0);
static RUNNING_CHANGED: Condvar = Condvar::new();

/// A place among the [`MAX_RUNNING`] servers; given back on drop.
struct Slot;

impl Slot {
    fn acquire() -> Slot {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= MAX_RUNNING {
            running = RUNNING_CHANGED
                .wait(running)
                .unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        RUNNING_CHANGED.notify_one();
    }
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// A service account with a token and its own kubeconfig, from
/// [`KubeApiServer::service_account_with_rules`].
#[derive(Debug, Clone)]
pub struct KubeUser {
    /// `system:serviceaccount:NAMESPACE:NAME`, as RBAC and audit logs name it.
    pub username: String,
    /// A bearer token (TokenRequest API, valid for an hour).
    pub token: String,
    /// A kubeconfig that authenticates as this user.
    pub kubeconfig: PathBuf,
}

/// A running API server (and its etcd); both stop on drop.
pub struct KubeApiServer {
    apiserver: Child,
    etcd: Child,
    dir: tempfile::TempDir,
    url: String,
    token: String,
    kubeconfig: PathBuf,
    ca: PathBuf,
    agent: ureq::Agent,
    _slot: Slot,
}

/// A process to stop on drop while the harness is still starting.
struct Guard(Option<Child>);

impl Guard {
    fn take(mut self) -> Child {
        self.0.take().expect("child present until taken")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl KubeApiServer {
    /// Starts etcd and kube-apiserver with Flux's CRDs installed, or returns `None` after
    /// printing one `skipped:` line when `etcd`, `kube-apiserver` or Flux's CRDs are
    /// missing (see [`real_or_skip`]; `TAGSMITH_REQUIRE_REAL=1` panics instead). Panics,
    /// with the servers' logs, when they are present but do not come up.
    pub fn start() -> Option<KubeApiServer> {
        let etcd = real_or_skip("etcd")?;
        let apiserver = real_or_skip("kube-apiserver")?;
        let crds = real_or_skip("crds")?;
        let slot = Slot::acquire();
        // Free ports are picked, released and bound again by the servers: another test can
        // take one in between. Such a clash is retried with new ports; anything else fails.
        let mut attempt = 1;
        let started = loop {
            match Self::try_start(&etcd, &apiserver) {
                Ok(started) => break started,
                Err(log) if attempt < 3 && log.contains("address already in use") => attempt += 1,
                Err(log) => panic!("{log}"),
            }
        };
        let server = started.finish(slot);
        server.install_crds(&crds);
        Some(server)
    }

    fn try_start(etcd_bin: &Path, apiserver_bin: &Path) -> Result<Starting, String> {
        // etcd fsyncs every write; on tmpfs that costs nothing. But its write-ahead log takes
        // 64 MB up front, more than a container's default /dev/shm holds.
        let builder = tempfile::Builder::new().prefix("tagsmith-kube-").clone();
        let dir = if free_kib("/dev/shm") >= 512 * 1024 {
            builder.tempdir_in("/dev/shm")
        } else {
            builder.tempdir()
        }
        .expect("tempdir");
        let (client, peer, secure) = (free_port(), free_port(), free_port());
        let etcd_log = dir.path().join("etcd.log");
        let etcd_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut etcd = Guard(Some(
            Command::new(etcd_bin)
                .args(["--name", "default", "--data-dir"])
                .arg(dir.path().join("etcd"))
                .args(["--listen-client-urls", &etcd_url])
                .args(["--advertise-client-urls", &etcd_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &format!("default={peer_url}")])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdout(Stdio::null())
                .stderr(log_file(&etcd_log))
                .spawn()
                .expect("start etcd"),
        ));
        wait_until(Duration::from_secs(30), || {
            if let Ok(Some(status)) = etcd.0.as_mut().map_or(Ok(None), Child::try_wait) {
                return Some(Err(format!(
                    "etcd exited with {status}: {}",
                    tail(&etcd_log)
                )));
            }
            let healthy = ureq::get(&format!("{etcd_url}/health"))
                .config()
                .timeout_global(Some(Duration::from_secs(1)))
                .build()
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .is_some_and(|body| body.contains("\"true\""));
            healthy.then_some(Ok(()))
        })
        .unwrap_or_else(|| Err(format!("etcd was not healthy in 30 s: {}", tail(&etcd_log))))?;

        let token = random_hex();
        let files = Files::write(dir.path(), &token);
        let apiserver_log = dir.path().join("kube-apiserver.log");
        let mut apiserver = Guard(Some(
            Command::new(apiserver_bin)
                .arg(format!("--etcd-servers={etcd_url}"))
                // Loopback only. The API server refuses to publish a loopback address in the
                // `kubernetes` Service's endpoints, and nothing here needs them: no reconciler.
                .args([
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none",
                ])
                .arg(format!("--secure-port={secure}"))
                .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
                .arg(format!("--tls-cert-file={}", files.serving_cert.display()))
                .arg(format!(
                    "--tls-private-key-file={}",
                    files.serving_key.display()
                ))
                .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
                .arg(format!(
                    "--service-account-key-file={}",
                    files.sa_pub.display()
                ))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    files.sa_key.display()
                ))
                .arg(format!("--token-auth-file={}", files.tokens.display()))
                .args([
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.96.0.0/16",
                ])
                .stdout(Stdio::null())
                .stderr(log_file(&apiserver_log))
                .spawn()
                .expect("start kube-apiserver"),
        ));
        let url = format!("https://127.0.0.1:{secure}");
        let agent = agent_trusting(&files.ca);
        wait_until(Duration::from_secs(90), || {
            if let Ok(Some(status)) = apiserver.0.as_mut().map_or(Ok(None), Child::try_wait) {
                return Some(Err(format!(
                    "kube-apiserver exited with {status}: {}",
                    tail(&apiserver_log)
                )));
            }
            let ready = agent
                .get(&format!("{url}/readyz"))
                .header("Authorization", &format!("Bearer {token}"))
                .call()
                .ok()
                .filter(|r| r.status() == 200);
            ready.map(|_| Ok(()))
        })
        .unwrap_or_else(|| {
            Err(format!(
                "kube-apiserver was not ready in 90 s: {}",
                tail(&apiserver_log)
            ))
        })?;

        // Ready comes a moment before the bootstrap controller has created `default`, which
        // `apply` and the kubeconfig use.
        let namespace_ready = wait_until(Duration::from_secs(30), || {
            agent
                .get(&format!("{url}/api/v1/namespaces/default"))
                .header("Authorization", &format!("Bearer {token}"))
                .call()
                .ok()
                .filter(|r| r.status() == 200)
        });
        if namespace_ready.is_none() {
            return Err(format!(
                "namespace default did not appear in 30 s: {}",
                tail(&apiserver_log)
            ));
        }

        let kubeconfig = dir.path().join("kubeconfig");
        write_kubeconfig(&kubeconfig, &url, &files.ca, &token);
        Ok(Starting {
            apiserver,
            etcd,
            dir,
            url,
            token,
            kubeconfig,
            ca: files.ca,
            agent,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin's bearer token (group `system:masters`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A kubeconfig file for the admin: the server, the CA that signed its certificate
    /// (clients verify TLS), the token; namespace `default`.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The PEM file of the CA that signed the server's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// Sends `body` (JSON) as the admin to `path` (e.g. `/api/v1/namespaces`) and returns
    /// the HTTP status and the answer (JSON, or the text as a JSON string). Never panics on
    /// an HTTP error status: see [`Self::get`] and friends for that.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.request_as(&self.token, method, path, content_type, body)
    }

    /// [`Self::request`] with another bearer token (e.g. a [`KubeUser`]'s).
    pub fn request_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("Authorization", format!("Bearer {token}"))
            .header("Accept", "application/json");
        let response = match body {
            Some(body) => self.agent.run(
                builder
                    .header("Content-Type", content_type)
                    .body(serde_json::to_vec(body).expect("JSON body"))
                    .expect("request"),
            ),
            None => self.agent.run(builder.body(()).expect("request")),
        };
        let mut response =
            response.unwrap_or_else(|e| panic!("{method} {path} to the API server: {e}"));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// GETs `path` as the admin; panics unless the answer is 2xx.
    pub fn get(&self, path: &str) -> Value {
        ok("GET", path, self.request("GET", path, "", None))
    }

    /// JSON merge patch of `path` (RFC 7386) as the admin; panics unless 2xx.
    pub fn merge_patch(&self, path: &str, patch: &Value) -> Value {
        let answer = self.request("PATCH", path, "application/merge-patch+json", Some(patch));
        ok("PATCH", path, answer)
    }

    /// Merge-patches the status of the object at `path` through its `/status` subresource,
    /// as a controller writes status; panics unless 2xx.
    pub fn patch_status(&self, path: &str, status: &Value) -> Value {
        self.merge_patch(&format!("{path}/status"), &json!({ "status": status }))
    }

    /// Applies every document of `yaml` (server-side apply, forced, as the field manager
    /// `tagsmith-testkit`) and returns the objects as stored. A namespaced object without a
    /// namespace lands in `default`. Panics unless each apply succeeds.
    pub fn apply(&self, yaml: &str) -> Vec<Value> {
        yaml_documents(yaml)
            .into_iter()
            .map(|object| {
                let path = self.path_of(&object);
                let query = format!("{path}?fieldManager={FIELD_MANAGER}&force=true");
                let answer = self.request(
                    "PATCH",
                    &query,
                    "application/apply-patch+yaml",
                    Some(&object),
                );
                ok("apply", &path, answer)
            })
            .collect()
    }

    /// Creates namespace `name` (applied: an existing one is kept).
    pub fn create_namespace(&self, name: &str) {
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"
        ));
    }

    /// The URL path of `object` (its `apiVersion`, `kind`, `metadata.namespace` and
    /// `metadata.name`), the resource name found by discovery.
    pub fn path_of(&self, object: &Value) -> String {
        let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        let api_version = field("/apiVersion").expect("object has an apiVersion");
        let kind = field("/kind").expect("object has a kind");
        let name = field("/metadata/name").expect("object has a metadata.name");
        let namespace = field("/metadata/namespace").unwrap_or("default");
        self.resource_path(api_version, kind, Some(namespace)) + "/" + name
    }

    /// The collection path of `kind` in `api_version`: `/apis/GROUP/VERSION[/namespaces/NS]/PLURAL`
    /// (core kinds under `/api/v1`); `namespace` is ignored for cluster-scoped kinds.
    pub fn resource_path(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> String {
        let base = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let list = self.get(&base);
        let resource = list["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["kind"] == kind && !r["name"].as_str().unwrap_or("/").contains('/'))
            .unwrap_or_else(|| panic!("discovery of {base} has no kind {kind}"));
        let plural = resource["name"].as_str().unwrap_or_default();
        match namespace {
            Some(ns) if resource["namespaced"] == true => {
                format!("{base}/namespaces/{ns}/{plural}")
            }
            _ => format!("{base}/{plural}"),
        }
    }

    /// GETs `path` until `done` holds for the object (at most `timeout`) and returns it;
    /// panics with the last answer otherwise. A 404 counts as not done yet.
    pub fn wait_for(&self, path: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        wait_until(timeout, || {
            let (status, object) = self.request("GET", path, "", None);
            let hit = (200..300).contains(&status) && done(&object);
            last = object;
            hit.then_some(())
        })
        .unwrap_or_else(|| panic!("{path} did not reach the awaited state in {timeout:?}: {last}"));
        last
    }

    /// A `flux` command (Flux's own CLI from the tool cache) pointed at this server as the
    /// admin, with a private `HOME` for its caches; `None` after a `skipped:` line when the
    /// CLI is not built. Spawn it to act while it waits (e.g. `flux reconcile`).
    pub fn flux_command(&self) -> Option<Command> {
        self.flux_command_with(&self.kubeconfig)
    }

    fn flux_command_with(&self, kubeconfig: &Path) -> Option<Command> {
        let flux = real_or_skip("flux")?;
        let home = self.dir.path().join("flux-home");
        fs::create_dir_all(&home).expect("flux home");
        let mut command = Command::new(flux);
        command
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .arg("--kubeconfig")
            .arg(kubeconfig);
        Some(command)
    }

    /// Runs `flux ARGS` as the admin; `None` after a `skipped:` line when it is not built.
    pub fn flux(&self, args: &[&str]) -> Option<CliOutput> {
        run(self.flux_command()?.args(args))
    }

    /// Runs `flux ARGS` as `user`; `None` after a `skipped:` line when it is not built.
    pub fn flux_as(&self, user: &KubeUser, args: &[&str]) -> Option<CliOutput> {
        run(self.flux_command_with(&user.kubeconfig)?.args(args))
    }

    /// A service account `namespace/name` bound (ClusterRole and ClusterRoleBinding, both
    /// named `tagsmith-test:NAMESPACE:NAME`) to exactly `rules` (RBAC PolicyRules as JSON,
    /// e.g. `[{"apiGroups":["image.toolkit.fluxcd.io"],"resources":["imagepolicies"],"verbs":["get","list"]}]`),
    /// with a token from the TokenRequest API and its own kubeconfig: the least privilege
    /// a controller's RBAC is tested with. The namespace must exist.
    pub fn service_account_with_rules(
        &self,
        namespace: &str,
        name: &str,
        rules: &Value,
    ) -> KubeUser {
        let role = format!("tagsmith-test:{namespace}:{name}");
        let objects = json!([
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": name, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": role}, "rules": rules},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": role},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
             "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
        ]);
        // JSON is YAML: one document each.
        for object in objects.as_array().into_iter().flatten() {
            self.apply(&object.to_string());
        }
        let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
        let request = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}
        });
        let answer = ok(
            "POST",
            &path,
            self.request("POST", &path, "application/json", Some(&request)),
        );
        let token = answer["status"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("TokenRequest answer without a token: {answer}"))
            .to_string();
        let kubeconfig = self
            .dir
            .path()
            .join(format!("kubeconfig-{namespace}-{name}"));
        write_kubeconfig(&kubeconfig, &self.url, &self.ca, &token);
        KubeUser {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            token,
            kubeconfig,
        }
    }

    /// Applies every CRD under `crds` and waits until each is Established and its group
    /// version lists it (the CLI and clients find kinds through discovery).
    fn install_crds(&self, crds: &Path) {
        let mut files: Vec<PathBuf> = fs::read_dir(crds)
            .unwrap_or_else(|e| panic!("reading {}: {e}", crds.display()))
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no CRDs in {}", crds.display());
        let mut installed = Vec::new();
        for file in &files {
            let yaml = fs::read_to_string(file)
                .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
            installed.extend(self.apply(&yaml));
        }
        for crd in installed {
            let name = crd["metadata"]["name"].as_str().unwrap_or_default();
            let path = format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}");
            self.wait_for(&path, Duration::from_secs(60), |crd| {
                crd["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
            let group = crd["spec"]["group"].as_str().unwrap_or_default();
            let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
            for version in crd["spec"]["versions"].as_array().into_iter().flatten() {
                if version["served"] != true {
                    continue;
                }
                let version = version["name"].as_str().unwrap_or_default();
                self.wait_for(
                    &format!("/apis/{group}/{version}"),
                    Duration::from_secs(60),
                    |list| {
                        list["resources"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|r| r["name"] == plural)
                    },
                );
            }
        }
    }
}

/// A server that answered `/readyz`, before the CRDs are installed.
struct Starting {
    apiserver: Guard,
    etcd: Guard,
    dir: tempfile::TempDir,
    url: String,
    token: String,
    kubeconfig: PathBuf,
    ca: PathBuf,
    agent: ureq::Agent,
}

impl Starting {
    fn finish(self, slot: Slot) -> KubeApiServer {
        KubeApiServer {
            apiserver: self.apiserver.take(),
            etcd: self.etcd.take(),
            dir: self.dir,
            url: self.url,
            token: self.token,
            kubeconfig: self.kubeconfig,
            ca: self.ca,
            agent: self.agent,
            _slot: slot,
        }
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        // The API server first: it would log etcd connection errors while it outlives etcd.
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
    }
}

/// The files the API server reads at start.
struct Files {
    ca: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    sa_key: PathBuf,
    sa_pub: PathBuf,
    tokens: PathBuf,
}

impl Files {
    /// A CA and a serving certificate for 127.0.0.1 signed by it (rustls refuses a CA
    /// certificate as a server's own), the service-account key pair, the token file.
    fn write(dir: &Path, admin_token: &str) -> Files {
        let openssl = require("openssl");
        let path = |name: &str| dir.join(name);
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=tagsmith-test-ca",
            ],
        ]
        .concat());
        run(&[
            &["req", "-new"][..],
            &ec,
            &[
                "-keyout",
                "apiserver.key",
                "-out",
                "apiserver.csr",
                "-subj",
                "/CN=kube-apiserver",
            ],
        ]
        .concat());
        fs::write(
            path("apiserver.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write apiserver.ext");
        run(&[
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "apiserver.ext",
            "-out",
            "apiserver.crt",
        ]);
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "sa.key",
        ]);
        run(&["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
        // token,user,uid,"groups": system:masters passes every RBAC check.
        fs::write(
            path("tokens.csv"),
            format!("{admin_token},admin,admin,\"system:masters\"\n"),
        )
        .expect("write tokens.csv");
        Files {
            ca: path("ca.crt"),
            serving_cert: path("apiserver.crt"),
            serving_key: path("apiserver.key"),
            sa_key: path("sa.key"),
            sa_pub: path("sa.pub"),
            tokens: path("tokens.csv"),
        }
    }
}

/// Free space under `path` in KiB (0 when `df` cannot tell).
fn free_kib(path: &str) -> u64 {
    Command::new("df")
        .args(["-Pk", path])
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text.lines().nth(1)?.to_string();
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(0)
}

/// An HTTP agent that trusts only `ca` and reports HTTP errors as answers.
fn agent_trusting(ca: &Path) -> ureq::Agent {
    let pem = fs::read(ca).expect("read the CA");
    let cert = ureq::tls::Certificate::from_pem(&pem).expect("CA certificate PEM");
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        )
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn write_kubeconfig(path: &Path, url: &str, ca: &Path, token: &str) {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: tagsmith-test\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: tagsmith-test\n  context:\n    cluster: tagsmith-test\n    user: user\n    namespace: default\ncurrent-context: tagsmith-test\n",
        ca.display()
    );
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Calls `step` every 50 ms until it returns `Some` or `timeout` passes (then `None`).
fn wait_until<T>(timeout: Duration, mut step: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(done) = step() {
            return Some(done);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok(what: &str, path: &str, (status, answer): (u16, Value)) -> Value {
    assert!(
        (200..300).contains(&status),
        "{what} {path}: HTTP {status}: {answer}"
    );
    answer
}

fn run(command: &mut Command) -> Option<CliOutput> {
    let out = command.output().expect("run flux");
    Some(CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn log_file(path: &Path) -> fs::File {
    fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()))
}

/// The last 40 lines of a server's log, for failure messages.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!("{}:\n{}", path.display(), lines[from..].join("\n"))
}

/// 128 random bits as hex, from the standard library's per-process hash seeds: a loopback
/// test server's token needs to be unguessable only by accident.
fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u32(i);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// Every non-empty document of `yaml` as JSON.
fn yaml_documents(yaml: &str) -> Vec<Value> {
    let docs = yaml_rust2::YamlLoader::load_from_str(yaml)
        .unwrap_or_else(|e| panic!("YAML to apply does not parse: {e}"));
    docs.iter()
        .map(yaml_to_json)
        .filter(|doc| !doc.is_null())
        .collect()
}

fn yaml_to_json(yaml: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match yaml {
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => json!(i),
        Yaml::Real(text) => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(text.clone()), Value::Number),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let key = match key {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("unsupported YAML key {other:?}"),
                    };
                    (key, yaml_to_json(value))
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_documents_become_json_objects_one_per_document() {
        let docs = yaml_documents("a: 1\nb: [x, true, 1.5, null]\n---\n---\nc: {d: '2'}\n");
        assert_eq!(
            docs,
            vec![
                json!({"a": 1, "b": ["x", true, 1.5, null]}),
                json!({"c": {"d": "2"}})
            ]
        );
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_hex(), random_hex());
        assert_eq!(random_hex().len(), 32);
    }
}
