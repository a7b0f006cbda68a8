//! Node bindings for tagsmith: a thin napi-rs layer over the `tagsmith` facade crate.
//!
//! Everything here converts arguments, results and errors; the behaviour is the Rust
//! API's. Errors thrown (or rejected) carry `err.code` equal to the Rust `code()`.

#![allow(unsafe_code)] // napi's macros expand to FFI glue.
#![allow(missing_docs)] // #[napi] items are documented for JS; the macro adds hidden items.

#[path = "../../common/core.rs"]
mod core;

use crate::core::{ErrorInfo, ScanArgs};
use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;
use tagsmith::policy;

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A JS `Error` whose `code` is the Rust `code()` and `family` its crate, with the error's
/// fields (`path`, `line`, `policy`, `tag`, `image`, `registry`...) as properties.
fn js_err(env: &Env, e: impl Into<ErrorInfo>) -> Error {
    let e = e.into();
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::new(Status::GenericFailure, e.message.clone()))?;
        obj.set_named_property("code", e.code)?;
        obj.set_named_property("family", e.family)?;
        for (k, v) in &e.fields {
            obj.set_named_property(&camel(k), v.clone())?;
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|err| err)
}

fn to_js<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::new(Status::GenericFailure, e.to_string()))
}

/// One policy, as Flux's `ImagePolicy.spec`: exactly one of `semver` (a Masterminds v3
/// range), `alphabetical` or `numerical` (`"asc"` / `"desc"`), optionally `pattern` and
/// `extract` (`filterTags`).
#[napi(object)]
#[derive(Default, Clone)]
pub struct PolicyOptions {
    pub semver: Option<String>,
    pub alphabetical: Option<String>,
    pub numerical: Option<String>,
    pub pattern: Option<String>,
    pub extract: Option<String>,
    pub skip_non_numeric: Option<bool>,
}

fn spec(env: &Env, o: PolicyOptions) -> Result<policy::PolicySpec> {
    core::policy_spec(
        o.semver,
        o.alphabetical,
        o.numerical,
        o.pattern,
        o.extract,
        o.skip_non_numeric.unwrap_or(false),
    )
    .map_err(|e| js_err(env, e))
}

/// From this many tags on, `TagText::read` joins them in JS first.
const JOIN_MIN_TAGS: u32 = 512;

/// Joins an array of strings with `\n`, or returns `null` if any element is not a string.
const JOIN_SCRIPT: &str = "(function (tags) { for (let i = 0; i < tags.length; i++) { if (typeof tags[i] !== 'string') return null } return tags.join('\\n') })";

/// The join helper of this Node environment (each worker thread has its own), compiled
/// on first use and kept in the environment's instance data: a function compiled per call
/// never leaves V8's interpreter, and its type-check loop then costs 9 ns a tag.
struct JoinHelper(napi::UnknownRef);

fn join_helper(env: &Env) -> Result<Unknown<'_>> {
    if let Some(helper) = env.get_instance_data::<JoinHelper>()? {
        return helper.0.get_value(env);
    }
    let join: napi::UnknownRef = env.run_script(JOIN_SCRIPT)?;
    let value = join.get_value(env)?;
    // Released when the environment goes away.
    env.set_instance_data(JoinHelper(join), (), |ctx| {
        let _ = ctx.value.0.unref(&ctx.env);
    })?;
    Ok(value)
}

/// The tags of a call, read from a JS array.
///
/// Why not `Vec<String>`: napi-rs reads each element with three Node-API calls and an
/// allocation, about 115 ns a tag, nine times what selecting from it costs. A long array is
/// instead joined by V8 (about 30 ns a tag) and read as one string, then split in place;
/// if the pieces do not add up (a tag holding `\n`) or an element is not a string, the
/// array is read element by element, which also gives the error for a non-string.
enum TagText {
    Joined(String),
    Each(Vec<String>),
}

impl TagText {
    fn read(env: &Env, tags: Array) -> Result<Self> {
        if tags.len() >= JOIN_MIN_TAGS {
            let join: Function<Array, Option<String>> = Function::from_unknown(join_helper(env)?)?;
            if let Some(joined) = join.call(tags)? {
                // Counted as bytes (vectorised): `split` would call memchr once a tag.
                let pieces = joined.bytes().filter(|&b| b == b'\n').count() + 1;
                if pieces == tags.len() as usize {
                    return Ok(TagText::Joined(joined));
                }
            }
        }
        let mut each = Vec::with_capacity(tags.len() as usize);
        for i in 0..tags.len() {
            match tags.get::<Unknown>(i)? {
                Some(value) if value.get_type()? == ValueType::String => {
                    each.push(String::from_unknown(value)?)
                }
                _ => {
                    return Err(Error::new(
                        Status::InvalidArg,
                        format!("tags[{i}] must be a string"),
                    ))
                }
            }
        }
        Ok(TagText::Each(each))
    }

    fn strs(&self) -> Vec<&str> {
        match self {
            TagText::Joined(joined) => split_lines(joined),
            TagText::Each(each) => each.iter().map(String::as_str).collect(),
        }
    }
}

/// `text.split('\n')`, as a byte loop: tags are a few bytes long, so a memchr call per
/// tag (what `split` does) cost more than the selection itself.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::with_capacity(text.len() / 8 + 1);
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            lines.push(&text[start..i]);
            start = i + 1;
        }
    }
    lines.push(&text[start..]);
    lines
}

/// The latest tag of `tags` under one policy, as Flux's ImagePolicy would choose it;
/// throws (`err.code === "no_match"`, ...) when nothing matches.
#[napi]
pub fn select_latest(
    env: &Env,
    #[napi(ts_arg_type = "Array<string>")] tags: Array,
    options: PolicyOptions,
) -> Result<String> {
    let spec = spec(env, options)?;
    let tags = TagText::read(env, tags)?;
    policy::select_latest(&tags.strs(), &spec).map_err(|e| js_err(env, e))
}

/// Selects and explains: `latest`, `latestValue`, `policy`, `counts`, `top`.
#[napi]
pub fn explain(
    env: &Env,
    #[napi(ts_arg_type = "Array<string>")] tags: Array,
    options: PolicyOptions,
    top_n: Option<u32>,
) -> Result<Value> {
    let policy = ImagePolicy::new(env, options)?;
    policy.explain(env, tags, top_n)
}

/// A compiled policy, for selecting from many tag lists.
#[napi]
pub struct ImagePolicy {
    inner: policy::ImagePolicy,
}

#[napi]
impl ImagePolicy {
    /// Compiles the policy; throws `invalid_range`, `invalid_regex`, `invalid_order`.
    #[napi(constructor)]
    pub fn new(env: &Env, options: PolicyOptions) -> Result<Self> {
        let spec = spec(env, options)?;
        Ok(ImagePolicy {
            inner: policy::ImagePolicy::new(&spec).map_err(|e| js_err(env, e))?,
        })
    }

    /// The latest tag, as written.
    #[napi]
    pub fn select(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Array<string>")] tags: Array,
    ) -> Result<String> {
        let tags = TagText::read(env, tags)?;
        self.inner.select(&tags.strs()).map_err(|e| js_err(env, e))
    }

    /// Selects and explains (counts and the `topN` best candidates, default 5).
    #[napi]
    pub fn explain(
        &self,
        env: &Env,
        #[napi(ts_arg_type = "Array<string>")] tags: Array,
        top_n: Option<u32>,
    ) -> Result<Value> {
        let tags = TagText::read(env, tags)?;
        let x = self
            .inner
            .explain(&tags.strs(), top_n.unwrap_or(5) as usize)
            .map_err(|e| js_err(env, e))?;
        to_js(&x)
    }

    /// The spec as Flux writes it (`{ policy: {...}, filterTags: {...} }`).
    #[napi(getter)]
    pub fn spec(&self) -> Result<Value> {
        to_js(self.inner.spec())
    }
}

/// Times the Rust path alone (compile + select over `tags`, already converted) `repeat`
/// times; milliseconds per run. For the binding-overhead benchmark.
#[napi]
pub fn time_select_native(
    env: &Env,
    tags: Vec<String>,
    semver: String,
    repeat: u32,
) -> Result<Vec<f64>> {
    let spec = policy::PolicySpec::semver(semver);
    let mut times = Vec::with_capacity(repeat as usize);
    for _ in 0..repeat {
        let start = Instant::now();
        let chosen = policy::select_latest(&tags, &spec);
        times.push(start.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(chosen).map_err(|e| js_err(env, e))?;
    }
    Ok(times)
}

/// Rewrites the `$imagepolicy` markers of one file's content in memory. `policies` maps
/// `namespace:name` to an image reference. Returns `{ changed, content, objects, warnings }`
/// (`content` is `null` when nothing changed).
#[napi]
pub fn rewrite_string(
    env: &Env,
    content: String,
    policies: HashMap<String, String>,
    path: Option<String>,
) -> Result<Value> {
    let policies = core::policies(policies.into_iter().collect::<BTreeMap<_, _>>())
        .map_err(|e| js_err(env, e))?;
    let path = path.unwrap_or_else(|| "<string>".into());
    let out = tagsmith::setter::rewrite_str(content.as_bytes(), Path::new(&path), &policies);
    let new_content = out
        .new_content
        .map(|c| String::from_utf8_lossy(&c).into_owned());
    Ok(serde_json::json!({
        "changed": new_content.is_some(),
        "content": new_content,
        "objects": to_js(&out.objects)?,
        "warnings": to_js(&out.warnings)?,
    }))
}

/// Options of `rewriteTree`.
#[napi(object)]
#[derive(Default)]
pub struct TreeOptions {
    /// Compute the changes and the diff; write nothing.
    pub dry_run: Option<bool>,
    /// File name suffixes to read (default `.yaml`, `.yml`).
    pub extensions: Option<Vec<String>>,
}

/// Rewrites every marked YAML file under `root` (atomic writes). Returns `files`,
/// `warnings`, `filesScanned`, `filesWithMarkers`, `diff`, `written`, `dryRun`.
#[napi]
pub fn rewrite_tree(
    env: &Env,
    root: String,
    policies: HashMap<String, String>,
    options: Option<TreeOptions>,
) -> Result<Value> {
    let options = options.unwrap_or_default();
    let policies = core::policies(policies.into_iter().collect::<BTreeMap<_, _>>())
        .map_err(|e| js_err(env, e))?;
    let opts = core::tree_options(options.extensions);
    core::rewrite_tree(
        Path::new(&root),
        &policies,
        &opts,
        options.dry_run.unwrap_or(false),
    )
    .map_err(|e| js_err(env, e))
}

/// Options of `scan`: a tag snapshot file, or how to reach the registry.
#[napi(object)]
#[derive(Default)]
pub struct ScanOptions {
    pub snapshot: Option<String>,
    /// Exclusion patterns (default Flux's `^.*\.sig$`).
    pub exclusions: Option<Vec<String>>,
    pub insecure: Option<bool>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub docker_config: Option<String>,
    pub ca_bundle: Option<String>,
    /// Per-request timeout in seconds.
    pub timeout: Option<f64>,
}

/// Lists the tags of `image` (Flux's `lastScanResult` plus the tags); resolves on tokio.
#[napi(ts_return_type = "Promise<Record<string, any>>")]
pub fn scan<'env>(
    env: &'env Env,
    image: String,
    options: Option<ScanOptions>,
) -> Result<PromiseRaw<'env, Value>> {
    let o = options.unwrap_or_default();
    let args = ScanArgs {
        snapshot: o.snapshot,
        exclusions: o.exclusions,
        insecure: o.insecure.unwrap_or(false),
        username: o.username,
        password: o.password,
        token: o.token,
        docker_config: o.docker_config,
        ca_bundle: o.ca_bundle,
        timeout: o.timeout,
    };
    settle(env, async move { args.scan(image).await })
}

/// `camelCase` option names (as JS writes them) to `RunConfig`'s `snake_case` ones.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The whole automation on the Git checkout at `root` (or, with `root` null and
/// `options.url`, on a temporary clone of that URL), from its Flux objects. `options` are
/// `tagsmith run`'s (`RunOptions`, generated from the Rust `RunConfig`); unset ones fall
/// back to the `TAGSMITH_*` environment, as in the CLI. Resolves to the run report; objects
/// that failed carry `error: { code, message }` in it.
#[napi(ts_return_type = "Promise<Record<string, any>>")]
pub fn run<'env>(
    env: &'env Env,
    root: Option<String>,
    #[napi(ts_arg_type = "RunOptions | undefined | null")] options: Option<Value>,
) -> Result<PromiseRaw<'env, Value>> {
    let options = match options {
        Some(Value::Object(map)) => {
            Value::Object(map.into_iter().map(|(k, v)| (snake(&k), v)).collect())
        }
        Some(other) => other,
        None => Value::Null,
    };
    // Bad options reject the Promise like any other error, rather than throw.
    let config = core::run_config(root, options);
    settle(env, async move { core::run(config?).await })
}

/// Every error code by family (JSON): what `err.code` can be, and what `index.d.ts`'s
/// `ErrorCode` is checked against.
#[napi]
pub fn error_kinds() -> String {
    core::error_kinds_json()
}

/// The JSON schema of `run`'s options (`RunConfig`), which `index.d.ts` is checked against.
#[napi]
pub fn run_config_schema() -> String {
    core::run_config_schema()
}

/// Runs `work` on napi's tokio runtime; the Promise resolves to the converted value or
/// rejects with a coded `Error` built on the JS thread.
fn settle<'env, T, F>(env: &'env Env, work: F) -> Result<PromiseRaw<'env, Value>>
where
    T: serde::Serialize + Send + 'static,
    F: std::future::Future<Output = std::result::Result<T, ErrorInfo>> + Send + 'static,
{
    env.spawn_future_with_callback(
        async move { Ok(work.await) },
        |env, outcome| match outcome {
            Ok(value) => to_js(&value),
            Err(e) => Err(js_err(env, e)),
        },
    )
}
