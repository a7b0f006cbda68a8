//! Shared by the Python and Node bindings (each includes this file with `#[path]`): the
//! conversions from binding arguments to tagsmith values, and from tagsmith errors to a
//! stable `code`, a message and the error's location fields. No logic of its own.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use tagsmith::policy::{Exclusions, Order, PolicyError, PolicySpec};
use tagsmith::registry::{
    Credentials, OciTagSource, RegistryOptions, ScanError, ScanResult, Secret, SnapshotTagSource,
    TagSource,
};
use tagsmith::run::{RunOptions, RunReport};
use tagsmith::setter::{Policies, SetterError, SetterResult, TreeOptions};
use tagsmith::RunError;

/// A tagsmith error, flattened for a binding: its `code()`, its message and its fields.
pub struct ErrorInfo {
    /// The Rust `code()`.
    pub code: &'static str,
    /// The Rust `Display` text.
    pub message: String,
    /// The variant's fields (location: file, line, policy, tag, image, registry...).
    pub fields: Map<String, Value>,
}

fn info(code: &'static str, message: String, fields: Value) -> ErrorInfo {
    let fields = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    ErrorInfo {
        code,
        message,
        fields,
    }
}

/// Binding argument errors that the Rust API has no type for (wrong combination of options).
pub fn usage(message: impl Into<String>) -> ErrorInfo {
    info("invalid_argument", message.into(), Value::Null)
}

impl From<PolicyError> for ErrorInfo {
    fn from(e: PolicyError) -> Self {
        let fields = match &e {
            PolicyError::EmptyTags => json!({}),
            PolicyError::NoMatch { policy, reason } => json!({"policy": policy, "reason": reason}),
            PolicyError::InvalidRegex {
                field,
                pattern,
                reason,
            } => json!({"field": field, "pattern": pattern, "reason": reason}),
            PolicyError::InvalidRange { range, reason } => {
                json!({"range": range, "reason": reason})
            }
            PolicyError::InvalidOrder { order } => json!({"order": order}),
            PolicyError::NonNumericTag { tag } => json!({"tag": tag}),
        };
        info(e.code(), e.to_string(), fields)
    }
}

impl From<SetterError> for ErrorInfo {
    fn from(e: SetterError) -> Self {
        let fields = match &e {
            SetterError::InvalidImageRef {
                policy,
                reference,
                reason,
            } => json!({"policy": policy, "reference": reference, "reason": reason}),
            SetterError::InvalidPolicyKey { key } => json!({"key": key}),
            SetterError::InvalidGlob { pattern, reason } => {
                json!({"pattern": pattern, "reason": reason})
            }
            SetterError::InvalidRoot { path, reason } => {
                json!({"path": path.display().to_string(), "reason": reason})
            }
            SetterError::Io { path, source } => {
                json!({"path": path.display().to_string(), "reason": source.to_string()})
            }
            SetterError::Conflict { path } => json!({"path": path.display().to_string()}),
        };
        info(e.code(), e.to_string(), fields)
    }
}

impl From<ScanError> for ErrorInfo {
    fn from(e: ScanError) -> Self {
        let fields = match &e {
            ScanError::Policy(p) => return p.clone().into(),
            ScanError::InvalidReference { image, reason } => {
                json!({"image": image, "reason": reason})
            }
            ScanError::AuthFailed { registry, image } | ScanError::NotFound { registry, image } => {
                json!({"registry": registry, "image": image})
            }
            ScanError::Timeout {
                registry,
                image,
                attempts,
                timeout_ms,
            } => {
                json!({"registry": registry, "image": image, "attempts": attempts, "timeout_ms": timeout_ms})
            }
            ScanError::RateLimited {
                registry,
                image,
                attempts,
                elapsed_ms,
            } => {
                json!({"registry": registry, "image": image, "attempts": attempts, "elapsed_ms": elapsed_ms})
            }
            ScanError::Http {
                registry,
                image,
                status,
                message,
            } => json!({"registry": registry, "image": image, "status": status, "reason": message}),
            ScanError::Config { path, message } => json!({"path": path, "reason": message}),
            ScanError::NotInSnapshot { image } => json!({"image": image}),
        };
        info(e.code(), e.to_string(), fields)
    }
}

impl From<tagsmith::git::GitError> for ErrorInfo {
    fn from(e: tagsmith::git::GitError) -> Self {
        use tagsmith::git::GitError as G;
        let fields = match &e {
            G::Template { message } => json!({"reason": message}),
            G::Git { context, message } => json!({"context": context, "reason": message}),
            G::Apply { message } => json!({"reason": message}),
            G::PushRejected { target } => json!({"target": target}),
            G::PushRaceExhausted { branch, attempts } => {
                json!({"branch": branch, "attempts": attempts})
            }
            G::WorkTree { reason } => json!({"reason": reason}),
        };
        info(e.code(), e.to_string(), fields)
    }
}

impl From<RunError> for ErrorInfo {
    fn from(e: RunError) -> Self {
        let code = e.code();
        let message = e.to_string();
        #[allow(unreachable_patterns)] // the facade may grow variants
        let fields = match e {
            RunError::Scan(s) => return s.into(),
            RunError::Git(g) => return g.into(),
            RunError::InvalidObject {
                file,
                line,
                field,
                message,
            } => {
                json!({"path": file.display().to_string(), "line": line, "field": field, "reason": message})
            }
            RunError::Setter(reason) => json!({"reason": reason}),
            RunError::Io { path, message } => {
                json!({"path": path.display().to_string(), "reason": message})
            }
            RunError::Credentials { message } => json!({"reason": message}),
            _ => json!({}),
        };
        info(code, message, fields)
    }
}

/// Exactly one of the three orderings, plus the optional filter, as `select_latest` spells it.
pub fn policy_spec(
    semver: Option<String>,
    alphabetical: Option<String>,
    numerical: Option<String>,
    pattern: Option<String>,
    extract: Option<String>,
    skip_non_numeric: bool,
) -> Result<PolicySpec, ErrorInfo> {
    let mut spec = match (semver, alphabetical, numerical) {
        (Some(range), None, None) => PolicySpec::semver(range),
        (None, Some(order), None) => PolicySpec::alphabetical(order.parse::<Order>()?),
        (None, None, Some(order)) => PolicySpec::numerical(order.parse::<Order>()?),
        _ => {
            return Err(usage(
                "give exactly one policy: semver (a range), alphabetical or numerical (\"asc\" or \"desc\")",
            ))
        }
    };
    if let Some(p) = pattern {
        spec = spec.with_pattern(p);
    }
    if let Some(x) = extract {
        spec = spec.with_extract(x);
    }
    if skip_non_numeric {
        spec = spec.skipping_non_numeric();
    }
    Ok(spec)
}

/// `namespace:name` -> image reference, in a stable order.
pub fn policies(map: BTreeMap<String, String>) -> Result<Policies, ErrorInfo> {
    Ok(Policies::from_map(map)?)
}

/// File name suffixes for a tree walk (default `.yaml`, `.yml`).
pub fn tree_options(extensions: Option<Vec<String>>) -> TreeOptions {
    let mut opts = TreeOptions::default();
    if let Some(ext) = extensions {
        opts.extensions = ext;
    }
    opts
}

/// What `rewrite_tree` returns: the setter's result, the diff, and the files written.
pub fn rewrite_tree(
    root: &Path,
    policies: &Policies,
    opts: &TreeOptions,
    dry_run: bool,
) -> Result<Value, ErrorInfo> {
    let plan = tagsmith::setter::plan_tree(root, policies, opts)?;
    let diff = plan.unified_diff();
    let written: Vec<String> = if dry_run {
        Vec::new()
    } else {
        plan.write()?
            .into_iter()
            .map(|p| p.display().to_string())
            .collect()
    };
    let result: &SetterResult = plan.result();
    let mut value = serde_json::to_value(result).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("diff".into(), Value::String(diff));
        map.insert(
            "written".into(),
            Value::Array(written.into_iter().map(Value::String).collect()),
        );
        map.insert("dryRun".into(), Value::Bool(dry_run));
    }
    Ok(value)
}

/// The shared tokio runtime for the blocking and asyncio calls of the Python binding (Node
/// uses napi's own runtime).
#[allow(dead_code)]
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tagsmith")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start the tokio runtime: {e}"))
    })
}

/// Where a scan's tags come from, and the exclusions to apply.
#[derive(Default, Clone)]
pub struct ScanArgs {
    /// A tag snapshot file instead of the registry.
    pub snapshot: Option<String>,
    /// Exclusion patterns; `None` is Flux's default (`^.*\.sig$`).
    pub exclusions: Option<Vec<String>>,
    /// Plain HTTP.
    pub insecure: bool,
    /// Basic auth user.
    pub username: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
    /// A bearer token.
    pub token: Option<String>,
    /// A Docker config.json.
    pub docker_config: Option<String>,
    /// Extra CA certificates (PEM).
    pub ca_bundle: Option<String>,
    /// Per-request timeout, seconds.
    pub timeout: Option<f64>,
}

impl ScanArgs {
    fn source(&self) -> Result<Box<dyn TagSource>, ErrorInfo> {
        if let Some(path) = &self.snapshot {
            return Ok(Box::new(SnapshotTagSource::from_path(Path::new(path))?));
        }
        let credentials = match (
            &self.username,
            &self.password,
            &self.token,
            &self.docker_config,
        ) {
            (Some(u), Some(p), None, None) => Credentials::Basic {
                username: u.clone(),
                password: Secret::new(p.clone()),
            },
            (None, None, Some(t), None) => Credentials::Bearer(Secret::new(t.clone())),
            (None, None, None, Some(c)) => Credentials::DockerConfig(PathBuf::from(c)),
            (None, None, None, None) => Credentials::Anonymous,
            _ => {
                return Err(usage(
                    "give at most one of: username and password, token, docker_config",
                ))
            }
        };
        let mut options = RegistryOptions {
            insecure: self.insecure,
            ca_bundle: self.ca_bundle.as_ref().map(PathBuf::from),
            credentials,
            ..RegistryOptions::default()
        };
        if let Some(t) = self.timeout {
            if !(t.is_finite() && t > 0.0) {
                return Err(usage(format!(
                    "timeout must be a positive number of seconds, not {t}"
                )));
            }
            options.timeout = Duration::from_secs_f64(t);
        }
        Ok(Box::new(OciTagSource::new(options)?))
    }

    /// Lists and filters the tags of `image`.
    pub async fn scan(self, image: String) -> Result<ScanResult, ErrorInfo> {
        let exclusions = match &self.exclusions {
            None => Exclusions::flux_default(),
            Some(p) => Exclusions::new(p)?,
        };
        let source = self.source()?;
        Ok(tagsmith::registry::scan(source.as_ref(), &image, &exclusions).await?)
    }
}

/// The options of a run, as the bindings take them.
#[derive(Default, Clone)]
pub struct RunArgs {
    /// Compute and report only.
    pub dry_run: bool,
    /// Tag snapshot file.
    pub snapshot: Option<String>,
    /// Flux objects from this file instead of the tree.
    pub config: Option<String>,
    /// Docker config for registries without a secret.
    pub docker_config: Option<String>,
    /// Local stand-ins for Kubernetes secrets.
    pub secrets_dir: Option<String>,
    /// Scan cache folder (default: the user cache folder).
    pub cache_dir: Option<String>,
    /// Disable the scan cache.
    pub no_cache: bool,
    /// Remote to push to (default `origin`).
    pub remote: Option<String>,
    /// Push after committing (default true).
    pub push: Option<bool>,
    /// Clone this GitRepository URL into a temporary folder and run there instead of a
    /// checkout (`tagsmith run --url`).
    pub url: Option<String>,
    /// With `url`: the branch to clone (default: what the automations check out).
    pub branch: Option<String>,
    /// Git credentials for clone and push; each falls back to its `TAGSMITH_GIT_*`
    /// variable, and all absent leaves each automation its GitRepository's secret.
    pub ssh_key: Option<String>,
    /// known_hosts file for `ssh_key`.
    pub known_hosts: Option<String>,
    /// Passphrase of `ssh_key`.
    pub ssh_passphrase: Option<String>,
    /// HTTPS token.
    pub git_token: Option<String>,
    /// HTTPS user.
    pub git_username: Option<String>,
    /// HTTPS password.
    pub git_password: Option<String>,
}

impl RunArgs {
    /// The credentials given, over the `TAGSMITH_GIT_*` environment, as the CLI reads them.
    fn credentials(&self) -> tagsmith::credentials::GitCredentials {
        use tagsmith::git::Secret;
        let mut c = tagsmith::credentials::GitCredentials::from_process_env();
        if let Some(v) = &self.ssh_key {
            c.ssh_key = Some(PathBuf::from(v));
        }
        if let Some(v) = &self.known_hosts {
            c.known_hosts = Some(PathBuf::from(v));
        }
        if let Some(v) = &self.ssh_passphrase {
            c.ssh_passphrase = Some(Secret::new(v.clone()));
        }
        if let Some(v) = &self.git_token {
            c.token = Some(Secret::new(v.clone()));
        }
        if let Some(v) = &self.git_username {
            c.username = Some(v.clone());
        }
        if let Some(v) = &self.git_password {
            c.password = Some(Secret::new(v.clone()));
        }
        c
    }

    /// Runs the pipeline on the checkout at `root`, or on a clone of `url`.
    pub async fn run(self, root: Option<String>) -> Result<RunReport, ErrorInfo> {
        let auth = self.credentials().into_auth()?;
        let (root, objects_root, clone_dir) = match (root, &self.url) {
            (Some(_), Some(_)) => return Err(usage("give a checkout root or a url, not both")),
            (None, None) => return Err(usage("give a checkout root or a url")),
            (Some(root), None) => (PathBuf::from(root), None, None),
            (None, Some(url)) => {
                let dir = tempfile::tempdir().map_err(|e| {
                    ErrorInfo::from(RunError::Io {
                        path: std::env::temp_dir(),
                        message: e.to_string(),
                    })
                })?;
                let (url, branch, config) = (url.clone(), self.branch.clone(), self.config.clone());
                let (work, clone_auth) = (dir.path().to_path_buf(), auth.clone());
                // libgit2 blocks: off the async workers.
                let cloned = tokio::task::spawn_blocking(move || {
                    tagsmith::run::clone_work_tree(
                        &url,
                        branch.as_deref(),
                        clone_auth,
                        config.as_deref().map(Path::new),
                        &work,
                    )
                })
                .await
                .map_err(|e| usage(format!("clone task failed: {e}")))??;
                (cloned.root, cloned.objects_root, Some(dir))
            }
        };
        let mut opts = RunOptions::new(root);
        opts.objects_root = objects_root;
        // Explicit credentials serve every push, as in the CLI.
        opts.git_auth = Some(auth).filter(|a| *a != tagsmith::git::GitAuth::None);
        opts.dry_run = self.dry_run;
        opts.snapshot = self.snapshot.map(PathBuf::from);
        opts.config = self.config.map(PathBuf::from);
        opts.docker_config = self.docker_config.map(PathBuf::from);
        opts.secrets_dir = self.secrets_dir.map(PathBuf::from);
        if self.no_cache {
            opts.cache_dir = None;
        } else if let Some(dir) = self.cache_dir {
            opts.cache_dir = Some(PathBuf::from(dir));
        }
        if let Some(remote) = self.remote {
            opts.remote = remote;
        }
        if let Some(push) = self.push {
            opts.push = push;
        }
        let report = tagsmith::run::run(&opts).await?;
        drop(clone_dir);
        Ok(report)
    }
}
