//! Python bindings for tagsmith: a thin pyo3 layer over the `tagsmith` facade crate.
//!
//! Everything here converts arguments, results and errors; the behaviour is the Rust
//! API's. The Python package `tagsmith` (python/tagsmith/__init__.py) re-exports this
//! native module `tagsmith._native`.

#![allow(unsafe_code)] // pyo3's macros expand to FFI glue.

#[path = "../../common/core.rs"]
mod core;

use crate::core::{ErrorInfo, ScanArgs};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tagsmith::policy;

create_exception!(tagsmith, TagsmithError, PyException, "Base of every tagsmith error: `.code` is the Rust `code()`, `.family` its crate; the error's fields (path, line, policy, tag, image, registry...) are attributes.");

/// The exception classes, built once from `tagsmith::error::error_kinds` (no code is listed
/// here by hand): `"family"` -> the family's class, `"family:code"` -> the code's class.
static CLASSES: pyo3::sync::PyOnceLock<Py<PyDict>> = pyo3::sync::PyOnceLock::new();

/// The families whose errors are raised (object errors are report entries, not exceptions).
const RAISED_FAMILIES: [&str; 6] = ["policy", "setter", "scan", "git", "forge", "run"];

/// The prefix of a family's own class for a code several families share:
/// `not_found` from the scan crate is `RegistryNotFoundError` (and `timeout` is
/// `RegistryTimeoutError`, apart from the `scan_timeout` code's `ScanTimeoutError`).
fn family_prefix(family: &str) -> String {
    match family {
        "scan" => "Registry".to_string(),
        other => camel(other),
    }
}

/// A class name that does not shadow one of Python's builtins (`TimeoutError`) under
/// `from tagsmith import *`.
fn not_builtin(py: Python<'_>, name: String) -> PyResult<String> {
    let builtins = py.import("builtins")?;
    Ok(if builtins.hasattr(name.as_str())? {
        format!("Tagsmith{name}")
    } else {
        name
    })
}

fn camel(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A new exception class `name(bases...)` in module `tagsmith`.
fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: &[Bound<'py, PyAny>],
    doc: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "tagsmith")?;
    namespace.set_item("__doc__", doc)?;
    let bases = pyo3::types::PyTuple::new(py, bases)?;
    py.import("builtins")?
        .getattr("type")?
        .call1((name, bases, namespace))
}

/// Builds the classes: one per family (`ScanError`), one per code (`NoMatchError`); a code
/// several families report (`not_found`, `config`, `io`...) gets one shared class
/// (`NotFoundError`) and one per family deriving from both (`ScanNotFoundError(ScanError,
/// NotFoundError)`), so `except ScanError` and `except NotFoundError` both catch a registry's
/// 404. Returns `(classes by name, ERRORS_BY_CODE)`.
fn build_classes<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let kinds: Vec<_> = tagsmith::error::error_kinds()
        .into_iter()
        .filter(|k| RAISED_FAMILIES.contains(&k.family))
        .collect();
    let registry = PyDict::new(py);
    let by_name = PyDict::new(py);
    let by_code = PyDict::new(py);
    let base = py.get_type::<TagsmithError>().into_any();
    by_name.set_item("TagsmithError", &base)?;
    // Two codes with one class name would hide one of them: refuse at import.
    let define =
        |name: &str, bases: &[Bound<'py, PyAny>], doc: String| -> PyResult<Bound<'py, PyAny>> {
            if by_name.contains(name)? {
                return Err(PyTypeError::new_err(format!(
                    "two error classes named {name}"
                )));
            }
            let class = new_class(py, name, bases, &doc)?;
            by_name.set_item(name, &class)?;
            Ok(class)
        };
    for family in RAISED_FAMILIES {
        let name = format!("{}Error", camel(family));
        let doc = format!("Errors of tagsmith's {family} crate.");
        let class = define(&name, std::slice::from_ref(&base), doc)?;
        registry.set_item(family, &class)?;
    }
    for kind in &kinds {
        let family_class = registry
            .get_item(kind.family)?
            .ok_or_else(|| PyTypeError::new_err("family"))?;
        let own = not_builtin(py, format!("{}Error", camel(kind.code)))?;
        let shared = kinds.iter().filter(|k| k.code == kind.code).count() > 1;
        let class = if own == format!("{}Error", camel(kind.family)) {
            // `git` in the git family: the family's class itself.
            family_class
        } else if shared {
            let common = match by_name.get_item(&own)? {
                Some(c) => c,
                None => {
                    let doc = format!(
                        "code `{}`, whichever part of tagsmith reports it.",
                        kind.code
                    );
                    let c = define(&own, std::slice::from_ref(&base), doc)?;
                    by_code.set_item(kind.code, &c)?;
                    c
                }
            };
            let name = format!("{}{}Error", family_prefix(kind.family), camel(kind.code));
            let doc = format!("code `{}` from the {} crate.", kind.code, kind.family);
            define(&name, &[family_class, common], doc)?
        } else {
            let doc = format!("code `{}` ({} crate).", kind.code, kind.family);
            define(&own, &[family_class], doc)?
        };
        if !shared {
            by_code.set_item(kind.code, &class)?;
        }
        registry.set_item(format!("{}:{}", kind.family, kind.code), class)?;
    }
    CLASSES.get_or_init(py, || registry.clone().unbind());
    Ok((by_name, by_code))
}

fn exception_type<'py>(py: Python<'py>, family: &str, code: &str) -> Bound<'py, PyAny> {
    let registry = CLASSES.get(py).map(|d| d.bind(py).clone());
    registry
        .and_then(|d| {
            d.get_item(format!("{family}:{code}"))
                .ok()
                .flatten()
                .or_else(|| d.get_item(family).ok().flatten())
        })
        .unwrap_or_else(|| py.get_type::<TagsmithError>().into_any())
}

/// Builds the Python exception for a tagsmith error: the class for its family and code,
/// `.code`, `.family`, and one attribute per field.
fn to_py_err(py: Python<'_>, e: ErrorInfo) -> PyErr {
    if e.code == "invalid_argument" {
        return PyValueError::new_err(e.message);
    }
    let ty = exception_type(py, e.family, e.code);
    match ty.call1((e.message.clone(),)) {
        Ok(value) => {
            let _ = value.setattr("code", e.code);
            let _ = value.setattr("family", e.family);
            for (k, v) in &e.fields {
                if let Ok(v) = json_to_py(py, v) {
                    let _ = value.setattr(k.as_str(), v);
                }
            }
            PyErr::from_value(value)
        }
        Err(err) => err,
    }
}

fn err<T>(e: impl Into<ErrorInfo>) -> PyResult<T> {
    Python::attach(|py| Err(to_py_err(py, e.into())))
}

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

/// JSON value -> Python value, with `camelCase` keys as `snake_case`.
fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(snake(k), json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

fn to_py<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| PyValueError::new_err(format!("cannot convert the result: {e}")))?;
    json_to_py(py, &json)
}

fn spec(
    semver: Option<String>,
    alphabetical: Option<String>,
    numerical: Option<String>,
    pattern: Option<String>,
    extract: Option<String>,
    skip_non_numeric: bool,
) -> PyResult<policy::PolicySpec> {
    match core::policy_spec(
        semver,
        alphabetical,
        numerical,
        pattern,
        extract,
        skip_non_numeric,
    ) {
        Ok(s) => Ok(s),
        Err(e) => err(e),
    }
}

/// A compiled tag-selection policy (Flux `ImagePolicy.spec`): give exactly one of
/// `semver` (a Masterminds v3 range), `alphabetical` or `numerical` (`"asc"`/`"desc"`),
/// optionally `pattern` and `extract` (Flux `filterTags`).
#[pyclass(frozen, module = "tagsmith")]
struct ImagePolicy {
    inner: policy::ImagePolicy,
}

#[pymethods]
impl ImagePolicy {
    #[new]
    #[pyo3(signature = (*, semver=None, alphabetical=None, numerical=None, pattern=None, extract=None, skip_non_numeric=false))]
    fn new(
        semver: Option<String>,
        alphabetical: Option<String>,
        numerical: Option<String>,
        pattern: Option<String>,
        extract: Option<String>,
        skip_non_numeric: bool,
    ) -> PyResult<Self> {
        let spec = spec(
            semver,
            alphabetical,
            numerical,
            pattern,
            extract,
            skip_non_numeric,
        )?;
        match policy::ImagePolicy::new(&spec) {
            Ok(inner) => Ok(ImagePolicy { inner }),
            Err(e) => err(e),
        }
    }

    /// The latest tag, as written; raises `NoMatchError` (or another `PolicyError`).
    fn select(&self, py: Python<'_>, tags: &Bound<'_, PyAny>) -> PyResult<String> {
        let tags = TagList::new(tags)?;
        let tags = tags.as_strs()?;
        py.detach(|| self.inner.select(&tags)).or_else(err)
    }

    /// Selects and explains: `latest`, `latest_value`, `policy`, `counts`, `top`.
    #[pyo3(signature = (tags, top_n=5))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        tags: &Bound<'py, PyAny>,
        top_n: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tags = TagList::new(tags)?;
        let tags = tags.as_strs()?;
        match py.detach(|| self.inner.explain(&tags, top_n)) {
            Ok(x) => to_py(py, &x),
            Err(e) => err(e),
        }
    }

    /// The spec as Flux writes it (`{"policy": {...}, "filterTags": {...}}`), as a dict.
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.inner.spec())
    }

    fn __repr__(&self) -> String {
        let s = self.inner.spec();
        match &s.filter_tags {
            Some(f) => format!(
                "ImagePolicy({}, pattern={:?}, extract={:?})",
                s.kind, f.pattern, f.extract
            ),
            None => format!("ImagePolicy({})", s.kind),
        }
    }
}

/// The tags of a call, held as Python strings and read in place.
///
/// Why not `Vec<String>`: copying 100k strings into Rust costs about half as much as
/// selecting from them. Holding a strong reference to each `str` keeps its UTF-8 buffer
/// (cached inside the object by CPython) alive and unchanged even if another thread edits
/// the caller's list while the GIL is released, so borrowing it is safe.
struct TagList<'py> {
    items: Vec<Bound<'py, PyString>>,
}

impl<'py> TagList<'py> {
    /// Any iterable of `str` but a `str` itself (which would iterate its characters).
    fn new(tags: &Bound<'py, PyAny>) -> PyResult<Self> {
        if tags.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(
                "tags must be a sequence of str, not a str",
            ));
        }
        let mut items = Vec::with_capacity(tags.len().unwrap_or(0));
        for (i, item) in tags.try_iter()?.enumerate() {
            let item = item?;
            match item.cast_into::<PyString>() {
                Ok(s) => items.push(s),
                Err(e) => {
                    return Err(PyTypeError::new_err(format!(
                        "tags[{i}] must be a str, not {}",
                        e.into_inner().get_type().name()?
                    )))
                }
            }
        }
        Ok(TagList { items })
    }

    fn as_strs(&self) -> PyResult<Vec<&str>> {
        self.items.iter().map(|s| s.to_str()).collect()
    }
}

/// The latest tag of `tags` under one policy, as Flux's ImagePolicy would choose it.
#[pyfunction]
#[pyo3(signature = (tags, semver=None, alphabetical=None, numerical=None, pattern=None, extract=None, *, skip_non_numeric=false))]
#[allow(clippy::too_many_arguments)]
fn select_latest(
    py: Python<'_>,
    tags: &Bound<'_, PyAny>,
    semver: Option<String>,
    alphabetical: Option<String>,
    numerical: Option<String>,
    pattern: Option<String>,
    extract: Option<String>,
    skip_non_numeric: bool,
) -> PyResult<String> {
    let spec = spec(
        semver,
        alphabetical,
        numerical,
        pattern,
        extract,
        skip_non_numeric,
    )?;
    let tags = TagList::new(tags)?;
    let tags = tags.as_strs()?;
    py.detach(|| policy::select_latest(&tags, &spec))
        .or_else(err)
}

/// Selects and explains (counts and the `top_n` best candidates) in one call.
#[pyfunction]
#[pyo3(signature = (tags, semver=None, alphabetical=None, numerical=None, pattern=None, extract=None, *, skip_non_numeric=false, top_n=5))]
#[allow(clippy::too_many_arguments)]
fn explain<'py>(
    py: Python<'py>,
    tags: &Bound<'py, PyAny>,
    semver: Option<String>,
    alphabetical: Option<String>,
    numerical: Option<String>,
    pattern: Option<String>,
    extract: Option<String>,
    skip_non_numeric: bool,
    top_n: usize,
) -> PyResult<Bound<'py, PyAny>> {
    ImagePolicy::new(
        semver,
        alphabetical,
        numerical,
        pattern,
        extract,
        skip_non_numeric,
    )?
    .explain(py, tags, top_n)
}

/// Times the Rust path alone (compile + select over `tags`, already converted), `repeat`
/// times; returns seconds per run. For the binding-overhead benchmark.
#[pyfunction]
#[pyo3(signature = (tags, semver, repeat=10))]
fn _time_select_native(
    py: Python<'_>,
    tags: Vec<String>,
    semver: String,
    repeat: usize,
) -> PyResult<Vec<f64>> {
    let spec = policy::PolicySpec::semver(semver);
    py.detach(|| {
        let mut times = Vec::with_capacity(repeat);
        for _ in 0..repeat {
            let start = Instant::now();
            let chosen = policy::select_latest(&tags, &spec);
            times.push(start.elapsed().as_secs_f64());
            std::hint::black_box(chosen).map_err(ErrorInfo::from)?;
        }
        Ok::<_, ErrorInfo>(times)
    })
    .or_else(err)
}

/// Rewrites the `$imagepolicy` markers of one file's content in memory. `policies` maps
/// `namespace:name` to an image reference. Returns `content` (same type as given, or
/// `None` when nothing changed), `objects` (changes per object) and `warnings`.
#[pyfunction]
#[pyo3(signature = (content, policies, path="<string>"))]
fn rewrite_string<'py>(
    py: Python<'py>,
    content: &Bound<'py, PyAny>,
    policies: BTreeMap<String, String>,
    path: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (bytes, is_str): (Vec<u8>, bool) = if let Ok(s) = content.cast::<PyString>() {
        (s.to_cow()?.as_bytes().to_vec(), true)
    } else if let Ok(b) = content.cast::<PyBytes>() {
        (b.as_bytes().to_vec(), false)
    } else {
        return Err(PyTypeError::new_err("content must be str or bytes"));
    };
    let policies = core::policies(policies).or_else(err)?;
    let out = py.detach(|| tagsmith::setter::rewrite_str(&bytes, Path::new(path), &policies));
    let dict = PyDict::new(py);
    let new_content = match out.new_content {
        None => py.None().into_bound(py),
        Some(c) if is_str => match String::from_utf8(c) {
            Ok(s) => PyString::new(py, &s).into_any(),
            Err(e) => PyBytes::new(py, e.as_bytes()).into_any(),
        },
        Some(c) => PyBytes::new(py, &c).into_any(),
    };
    dict.set_item("changed", !new_content.is_none())?;
    dict.set_item("content", new_content)?;
    dict.set_item("objects", to_py(py, &out.objects)?)?;
    dict.set_item("warnings", to_py(py, &out.warnings)?)?;
    Ok(dict.into_any())
}

/// Rewrites every marked YAML file under `root` (atomic writes; `dry_run` writes nothing).
/// Returns `files`, `warnings`, `files_scanned`, `files_with_markers`, `diff` (unified),
/// `written` (paths) and `dry_run`.
#[pyfunction]
#[pyo3(signature = (root, policies, *, dry_run=false, extensions=None))]
fn rewrite_tree<'py>(
    py: Python<'py>,
    root: std::path::PathBuf,
    policies: BTreeMap<String, String>,
    dry_run: bool,
    extensions: Option<Vec<String>>,
) -> PyResult<Bound<'py, PyAny>> {
    let policies = core::policies(policies).or_else(err)?;
    let opts = core::tree_options(extensions);
    match py.detach(|| core::rewrite_tree(&root, &policies, &opts, dry_run)) {
        Ok(v) => json_to_py(py, &v),
        Err(e) => err(e),
    }
}

#[allow(clippy::too_many_arguments)]
fn scan_args(
    snapshot: Option<std::path::PathBuf>,
    exclusions: Option<Vec<String>>,
    insecure: bool,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
    docker_config: Option<std::path::PathBuf>,
    ca_bundle: Option<std::path::PathBuf>,
    timeout: Option<f64>,
) -> ScanArgs {
    let s = |p: Option<std::path::PathBuf>| p.map(|p| p.display().to_string());
    ScanArgs {
        snapshot: s(snapshot),
        exclusions,
        insecure,
        username,
        password,
        token,
        docker_config: s(docker_config),
        ca_bundle: s(ca_bundle),
        timeout,
    }
}

/// Lists the tags of `image` (blocking; the GIL is released): from the registry, or from a
/// tag `snapshot` file. Returns Flux's `lastScanResult` plus the tags.
#[pyfunction]
#[pyo3(signature = (image, *, snapshot=None, exclusions=None, insecure=false, username=None, password=None, token=None, docker_config=None, ca_bundle=None, timeout=None))]
#[allow(clippy::too_many_arguments)]
fn scan<'py>(
    py: Python<'py>,
    image: String,
    snapshot: Option<std::path::PathBuf>,
    exclusions: Option<Vec<String>>,
    insecure: bool,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
    docker_config: Option<std::path::PathBuf>,
    ca_bundle: Option<std::path::PathBuf>,
    timeout: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = scan_args(
        snapshot,
        exclusions,
        insecure,
        username,
        password,
        token,
        docker_config,
        ca_bundle,
        timeout,
    );
    match py.detach(|| core::runtime().block_on(args.scan(image))) {
        Ok(r) => to_py(py, &r),
        Err(e) => err(e),
    }
}

/// Completes an asyncio future from the event loop's thread (ignores a cancelled one).
#[pyfunction]
fn _resolve_future(future: &Bound<'_, PyAny>, ok: bool, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if future.call_method0("done")?.is_truthy()? {
        return Ok(());
    }
    if ok {
        future.call_method1("set_result", (value,))?;
    } else {
        future.call_method1("set_exception", (value,))?;
    }
    Ok(())
}

/// Runs `work` on the tokio runtime and returns an asyncio future of its converted result.
fn awaitable<'py, T, F>(py: Python<'py>, work: F) -> PyResult<Bound<'py, PyAny>>
where
    T: serde::Serialize + Send + 'static,
    F: std::future::Future<Output = Result<T, ErrorInfo>> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let resolve = py
        .import("tagsmith._native")?
        .getattr("_resolve_future")?
        .unbind();
    let loop_ref = event_loop.unbind();
    let fut_ref = future.clone().unbind();
    core::runtime().spawn(async move {
        let outcome = work.await;
        Python::attach(|py| {
            let (ok, value) = match outcome {
                Ok(v) => match to_py(py, &v) {
                    Ok(v) => (true, v),
                    Err(e) => (false, e.into_value(py).into_bound(py).into_any()),
                },
                Err(e) => (
                    false,
                    to_py_err(py, e).into_value(py).into_bound(py).into_any(),
                ),
            };
            // The loop may be closed by now; then nobody awaits the result.
            let _ = loop_ref.bind(py).call_method1(
                "call_soon_threadsafe",
                (resolve.bind(py), fut_ref.bind(py), ok, value),
            );
        });
    });
    Ok(future)
}

/// `scan`, as an asyncio awaitable: the scan runs on tagsmith's tokio runtime, not in a
/// Python thread.
#[pyfunction]
#[pyo3(signature = (image, *, snapshot=None, exclusions=None, insecure=false, username=None, password=None, token=None, docker_config=None, ca_bundle=None, timeout=None))]
#[allow(clippy::too_many_arguments)]
fn scan_async<'py>(
    py: Python<'py>,
    image: String,
    snapshot: Option<std::path::PathBuf>,
    exclusions: Option<Vec<String>>,
    insecure: bool,
    username: Option<String>,
    password: Option<String>,
    token: Option<String>,
    docker_config: Option<std::path::PathBuf>,
    ca_bundle: Option<std::path::PathBuf>,
    timeout: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = scan_args(
        snapshot,
        exclusions,
        insecure,
        username,
        password,
        token,
        docker_config,
        ca_bundle,
        timeout,
    );
    awaitable(py, args.scan(image))
}

/// Python keyword arguments as the JSON object `RunConfig` is read from: `None`, `bool`,
/// `int`, `float`, `str`, `os.PathLike` (as its path), and lists of these.
fn option_value(value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = value.cast::<pyo3::types::PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = value.extract::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = value.extract::<f64>() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_string()));
    }
    if let Ok(path) = value.extract::<std::path::PathBuf>() {
        return Ok(Value::String(path.display().to_string()));
    }
    if let Ok(list) = value.cast::<PyList>() {
        return list
            .iter()
            .map(|v| option_value(&v))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    Err(PyTypeError::new_err(format!(
        "run options take None, bool, int, str, os.PathLike or lists of them, not {}",
        value.get_type().name()?
    )))
}

fn run_config(
    root: Option<std::path::PathBuf>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<tagsmith::config::RunConfig> {
    let mut map = serde_json::Map::new();
    if let Some(options) = options {
        for (key, value) in options.iter() {
            map.insert(key.extract::<String>()?, option_value(&value)?);
        }
    }
    let root = root.map(|r| r.display().to_string());
    core::run_config(root, Value::Object(map)).or_else(err)
}

/// The whole automation on the Git checkout at `root` (scan -> select -> set -> commit ->
/// push), from its Flux objects; or, with `url=` instead of `root`, on a temporary clone of
/// that URL. The keyword arguments are `tagsmith run`'s options (`RunConfig`: `dry_run`,
/// `snapshot`, `config`, `docker_config`, `secrets_dir`, `cache_dir`, `no_cache`, `remote`,
/// `push`, `url`, `branch`, git credentials...; see the stubs); unset ones fall back to the
/// `TAGSMITH_*` environment, as in the CLI. Returns the run report; objects that failed carry
/// `error = {"code", "message"}` in it.
#[pyfunction]
#[pyo3(signature = (root=None, **options))]
fn run<'py>(
    py: Python<'py>,
    root: Option<std::path::PathBuf>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let config = run_config(root, options)?;
    match py.detach(|| core::runtime().block_on(core::run(config))) {
        Ok(r) => to_py(py, &r),
        Err(e) => err(e),
    }
}

/// `run`, as an asyncio awaitable.
#[pyfunction]
#[pyo3(signature = (root=None, **options))]
fn run_async<'py>(
    py: Python<'py>,
    root: Option<std::path::PathBuf>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let config = run_config(root, options)?;
    awaitable(py, core::run(config))
}

/// Every error code by family (JSON), which the exception classes and the stubs come from.
#[pyfunction]
fn error_kinds() -> String {
    core::error_kinds_json()
}

/// The JSON schema of `run`'s keyword arguments (`RunConfig`), which the stubs are checked
/// against.
#[pyfunction]
fn run_config_schema() -> String {
    core::run_config_schema()
}

/// The native module behind the `tagsmith` package.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<ImagePolicy>()?;
    m.add_function(wrap_pyfunction!(select_latest, m)?)?;
    m.add_function(wrap_pyfunction!(explain, m)?)?;
    m.add_function(wrap_pyfunction!(_time_select_native, m)?)?;
    m.add_function(wrap_pyfunction!(rewrite_string, m)?)?;
    m.add_function(wrap_pyfunction!(rewrite_tree, m)?)?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(scan_async, m)?)?;
    m.add_function(wrap_pyfunction!(_resolve_future, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(run_async, m)?)?;
    m.add_function(wrap_pyfunction!(run_config_schema, m)?)?;
    m.add("TagsmithError", py.get_type::<TagsmithError>())?;
    let (classes, by_code) = build_classes(py)?;
    m.add("EXCEPTIONS", &classes)?;
    m.add("ERRORS_BY_CODE", by_code)?;
    for (name, class) in classes.iter() {
        m.add(name.extract::<String>()?, class)?;
    }
    m.add_function(wrap_pyfunction!(error_kinds, m)?)?;
    Ok(())
}
