//! Shared by the Python and Node bindings (each includes this file with `#[path]`): the
//! conversions from binding arguments to tagsmith values, and from tagsmith errors to a
//! stable `code`, a message and the error's location fields. No logic of its own.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use tagsmith::config::RunConfig;
use tagsmith::policy::{Exclusions, Order, PolicyError, PolicySpec};
use tagsmith::registry::{
    Credentials, OciTagSource, RegistryOptions, ScanError, ScanResult, Secret, SnapshotTagSource,
    TagSource,
};
use tagsmith::run::{RunContext, RunReport};
use tagsmith::setter::{Policies, SetterError, SetterResult, TreeOptions};
use tagsmith::RunError;

/// A tagsmith error, flattened for a binding: its family and `code()` (together they name
/// the Python exception class), its message and its fields.
pub struct ErrorInfo {
    /// The family in `tagsmith::error::error_kinds` (`policy`, `scan`, ...; `usage` for
    /// binding argument errors).
    pub family: &'static str,
    /// The Rust `code()`.
    pub code: &'static str,
    /// The Rust `Display` text.
    pub message: String,
    /// The variant's fields as the error serialises them (location: path, line, policy,
    /// tag, image, registry...).
    pub fields: Map<String, Value>,
}

/// The fields of a serialisable error (`#[serde(tag = "code")]`), without its code.
fn fields_of<E: serde::Serialize>(error: &E) -> Map<String, Value> {
    match serde_json::to_value(error) {
        Ok(Value::Object(mut map)) => {
            map.remove("code");
            map
        }
        _ => Map::new(),
    }
}

fn info<E: serde::Serialize + std::fmt::Display>(
    family: &'static str,
    code: &'static str,
    e: &E,
) -> ErrorInfo {
    ErrorInfo {
        family,
        code,
        message: e.to_string(),
        fields: fields_of(e),
    }
}

/// Binding argument errors that the Rust API has no type for (wrong combination of options).
pub fn usage(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo {
        family: "usage",
        code: "invalid_argument",
        message: message.into(),
        fields: Map::new(),
    }
}

impl From<PolicyError> for ErrorInfo {
    fn from(e: PolicyError) -> Self {
        info("policy", e.code(), &e)
    }
}

impl From<SetterError> for ErrorInfo {
    fn from(e: SetterError) -> Self {
        info("setter", e.code(), &e)
    }
}

impl From<ScanError> for ErrorInfo {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Policy(p) => p.into(),
            e => info("scan", e.code(), &e),
        }
    }
}

impl From<tagsmith::git::GitError> for ErrorInfo {
    fn from(e: tagsmith::git::GitError) -> Self {
        info("git", e.code(), &e)
    }
}

impl From<RunError> for ErrorInfo {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Scan(s) => s.into(),
            RunError::Git(g) => g.into(),
            e => info(e.family(), e.code(), &e),
        }
    }
}

/// Every error code by family (`tagsmith::error::error_kinds`), as JSON: the bindings
/// build their exception classes and code lists from it, and their tests check the stubs
/// against it.
pub fn error_kinds_json() -> String {
    serde_json::to_string(&tagsmith::error::error_kinds()).unwrap_or_default()
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

/// The options of a run, as both bindings take them: a JSON object of
/// `tagsmith::config::RunConfig`'s fields (snake_case), with `root` given apart. The
/// `TAGSMITH_*` environment fills what is not given, as in the CLI.
pub fn run_config(root: Option<String>, options: Value) -> Result<RunConfig, ErrorInfo> {
    let mut options = match options {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        other => return Err(usage(format!("run options must be an object, not {other}"))),
    };
    if let Some(root) = root {
        if options.contains_key("root") {
            return Err(usage(
                "give root once: as the first argument or as an option",
            ));
        }
        options.insert("root".into(), Value::String(root));
    }
    let config: RunConfig = serde_json::from_value(Value::Object(options))
        .map_err(|e| usage(format!("run options: {e}")))?;
    config.validate().map_err(usage)?;
    if config.root.is_none() && config.url.is_none() {
        return Err(usage("give a checkout root or a url"));
    }
    Ok(config.with_process_env())
}

/// Runs the pipeline as the configuration says (a checkout, or a clone of `url`).
pub async fn run(config: RunConfig) -> Result<RunReport, ErrorInfo> {
    Ok(tagsmith::run::run(&RunContext::new(config)).await?)
}

/// The configuration's JSON schema, for the stub checks of both bindings.
pub fn run_config_schema() -> String {
    RunConfig::json_schema().to_string()
}
