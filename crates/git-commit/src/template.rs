//! Commit messages from Go `text/template` templates with Flux's data model
//! (`ImageUpdateAutomation.spec.git.commit.messageTemplate`), rendered by `gotmpl`, a port
//! of Go's `text/template` (maps ranged in sorted key order, trim markers, pipes,
//! variables, `printf`).
//!
//! Flux's data: `.AutomationObject` (`namespace/name`), `.Changed.FileChanges` (file ->
//! object -> changes), `.Changed.Objects` (object -> changes), `.Changed.Changes` (all
//! changes: `.OldValue`, `.NewValue`, `.Setter`), `.Values`
//! (`messageTemplateValues`). Go keys the object maps by a struct (kyaml's
//! `ResourceIdentifier`); `gotmpl` maps are keyed by strings, so the key here is the text
//! Go prints for that struct, `{{{apps/v1 Deployment} {app default}}}`, and field access
//! on a key variable (`{{ $resource.Kind }}`, as in Flux's documented template) is
//! rewritten into a lookup of the same fields (see [`rewrite_key_fields`]). Each change
//! also carries `.Kind`, `.Name`, `.Namespace`, `.APIVersion` and `.File`. `.Updated` and
//! `.Changed.ImageResult` were removed from Flux v1 (image-automation-controller v1.0,
//! Flux 2.7); [`MessageTemplate::parse`] refuses them as Flux does, and
//! [`MessageTemplate::parse_legacy`] accepts them for `v1beta1`/`v1beta2` objects, rendered
//! from [`TemplateData::with_updated`] as Flux up to 2.6 rendered them. The Sprig
//! functions Flux's templates use most are there ([`crate::sprig`]).
//!
//! Budgets: a template is at most [`MAX_TEMPLATE_BYTES`], a rendered message at most
//! [`MAX_MESSAGE_BYTES`], `range` runs at most [`MAX_RANGE_ITERATIONS`] times in all, and
//! the functions have their own limits ([`crate::sprig`]); going over any of them is a
//! template error, never a panic.

use crate::GitError;
use serde::Serialize;
use std::collections::BTreeMap;

/// Flux's default commit message (image-automation-controller v1).
pub const DEFAULT_MESSAGE_TEMPLATE: &str = "Update from image update automation";

/// The longest message a template may render (1 MiB; a commit message is a few lines).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// The longest template accepted (64 KiB; Flux's documented templates are under 1 KiB).
pub const MAX_TEMPLATE_BYTES: usize = 64 << 10;

/// How many `range` iterations one render may run, over all loops.
pub const MAX_RANGE_ITERATIONS: u64 = 1_000_000;

/// An object a change was made in, as Flux's commit template data names it
/// (`ObjectIdentifier`: every field a string, empty when absent, ordered and printed as Go
/// does). Not the setter's `ObjectRef`, which says which fields a YAML document has; the
/// facade converts one into the other where the setter's result becomes template data.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectIdentifier {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectIdentifier {
    /// The object maps' key: what Go prints for Flux's `ObjectIdentifier`
    /// (`{{{apiVersion kind} {name namespace}}}`). Maps range in key order, and this text
    /// sorts as Go sorts the struct (apiVersion, kind, name, namespace) except where a
    /// kind or namespace is a prefix of another one in the same position.
    pub fn key(&self) -> String {
        format!(
            "{{{{{{{} {}}} {{{} {}}}}}}}",
            self.api_version, self.kind, self.name, self.namespace
        )
    }
}

/// One changed value, as the setter reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// File, relative to the repository root.
    pub file: String,
    /// The object.
    pub object: ObjectIdentifier,
    /// Value before.
    pub old_value: String,
    /// Value after.
    pub new_value: String,
    /// The marker's setter name (`ns:policy` or `ns:policy:tag`).
    pub setter: String,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeView {
    old_value: String,
    new_value: String,
    setter: String,
    file: String,
    kind: String,
    name: String,
    namespace: String,
    #[serde(rename = "APIVersion")]
    api_version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KeyView {
    kind: String,
    name: String,
    namespace: String,
    #[serde(rename = "APIVersion")]
    api_version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ChangedView {
    file_changes: BTreeMap<String, BTreeMap<String, Vec<ChangeView>>>,
    objects: BTreeMap<String, Vec<ChangeView>>,
    changes: Vec<ChangeView>,
    /// The fields of each object key, for the rewritten `$key.Field` accesses.
    object_keys: BTreeMap<String, KeyView>,
    /// Flux's `ResultV2.ImageResult` (v1beta2), the same value as `.Updated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    image_result: Option<UpdatedView>,
}

/// Flux's `update.Result` (`.Updated`): file -> object -> image refs, the refs printed as
/// Go prints an `ImageRef` (its `String()`: the ref as the policy gave it).
#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct UpdatedView {
    files: BTreeMap<String, FileResultView>,
    /// `Result.Objects()`: every object's refs, appended file after file.
    objects: BTreeMap<String, Vec<String>>,
    /// `Result.Images()`: every distinct ref once.
    images: Vec<String>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
struct FileResultView {
    objects: BTreeMap<String, Vec<String>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataView {
    automation_object: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<UpdatedView>,
    changed: ChangedView,
    values: BTreeMap<String, String>,
}

/// The policy a setter name belongs to: Flux registers `ns:name` and its `:tag`,
/// `:name` and `:digest` setters for the same image ref.
fn policy_of(setter: &str) -> &str {
    match setter.rsplit_once(':') {
        Some((policy, "tag" | "name" | "digest")) if policy.contains(':') => policy,
        _ => setter,
    }
}

/// Builds `.Updated` as Flux's setter callback and `Result` methods did (image-automation
/// -controller before v1.0, `pkg/update/result.go`): within a file, an object lists each
/// ref once, in the order the setters changed it (a ref is a policy's image, so two
/// policies with the same image are two refs that print the same); `Objects()` appends an
/// object's refs from every file holding it; `Images()` lists each ref once. Go ranges
/// maps in random order there; this takes files, then objects, in sorted order.
fn updated_view(changes: &[ChangeRecord], images: &BTreeMap<String, String>) -> UpdatedView {
    type Ref = (String, String); // (policy, image)
    let mut files: BTreeMap<String, BTreeMap<String, Vec<Ref>>> = BTreeMap::new();
    for c in changes {
        let policy = policy_of(&c.setter);
        // Flux skips a change whose setter no policy defines (it has no image ref).
        let Some(image) = images.get(policy) else {
            continue;
        };
        let refs = files
            .entry(c.file.clone())
            .or_default()
            .entry(c.object.key())
            .or_default();
        let r = (policy.to_string(), image.clone());
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    let mut objects: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    for per_file in files.values() {
        for (key, refs) in per_file {
            objects
                .entry(key.clone())
                .or_default()
                .extend(refs.iter().map(|(_, image)| image.clone()));
            for r in refs {
                if seen.insert(r.clone()) {
                    all.push(r.1.clone());
                }
            }
        }
    }
    UpdatedView {
        files: files
            .into_iter()
            .map(|(file, per_file)| {
                let objects = per_file
                    .into_iter()
                    .map(|(key, refs)| (key, refs.into_iter().map(|(_, image)| image).collect()))
                    .collect();
                (file, FileResultView { objects })
            })
            .collect(),
        objects,
        images: all,
    }
}

/// The value a message template is rendered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateData {
    /// The automation's namespace.
    pub namespace: String,
    /// The automation's name.
    pub name: String,
    /// What changed.
    pub changes: Vec<ChangeRecord>,
    /// `messageTemplateValues`.
    pub values: BTreeMap<String, String>,
    /// For `.Updated` (Flux `v1beta1`/`v1beta2`): each policy's latest image ref as the
    /// policy reports it (`namespace:name` -> `reg/app:1.2.3`, or `...@sha256:...` with
    /// a digest); `None` renders Flux v1's data, which has no `.Updated`.
    pub updated: Option<BTreeMap<String, String>>,
}

impl TemplateData {
    /// Template data for an automation and its changes.
    pub fn new(
        namespace: &str,
        name: &str,
        changes: &[ChangeRecord],
        values: BTreeMap<String, String>,
    ) -> Self {
        TemplateData {
            namespace: namespace.to_string(),
            name: name.to_string(),
            changes: changes.to_vec(),
            values,
            updated: None,
        }
    }

    /// Adds Flux's `.Updated` (and `.Changed.ImageResult`), the data `v1beta1` and
    /// `v1beta2` automations gave their templates up to Flux 2.6: `images` maps each
    /// policy (`namespace:name`) to its latest image ref, the text Flux printed for an
    /// updated image. See [`MessageTemplate::parse_legacy`].
    pub fn with_updated(mut self, images: BTreeMap<String, String>) -> Self {
        self.updated = Some(images);
        self
    }

    fn view(&self, legacy: bool) -> DataView {
        let change = |c: &ChangeRecord| ChangeView {
            old_value: c.old_value.clone(),
            new_value: c.new_value.clone(),
            setter: c.setter.clone(),
            file: c.file.clone(),
            kind: c.object.kind.clone(),
            name: c.object.name.clone(),
            namespace: c.object.namespace.clone(),
            api_version: c.object.api_version.clone(),
        };
        let mut file_changes: BTreeMap<String, BTreeMap<String, Vec<ChangeView>>> = BTreeMap::new();
        let mut objects: BTreeMap<String, Vec<ChangeView>> = BTreeMap::new();
        let mut object_keys: BTreeMap<String, KeyView> = BTreeMap::new();
        // Flux's order where it is deterministic (files, then objects, as maps range), and
        // the same order where Flux ranges over Go maps at random (`.Changed.Changes`):
        // by file, then object (apiVersion, kind, name, namespace), then as reported.
        let mut ordered: Vec<&ChangeRecord> = self.changes.iter().collect();
        ordered.sort_by(|a, b| {
            let object = |c: &ChangeRecord| {
                (
                    c.object.api_version.clone(),
                    c.object.kind.clone(),
                    c.object.name.clone(),
                    c.object.namespace.clone(),
                )
            };
            a.file.cmp(&b.file).then_with(|| object(a).cmp(&object(b)))
        });
        // `.Changed.Changes` lists each (old value, new value, setter) once, as Flux's
        // `Result.Changes()` does.
        let mut seen = std::collections::HashSet::new();
        let changes: Vec<ChangeView> = ordered
            .iter()
            .filter(|c| seen.insert((&c.old_value, &c.new_value, &c.setter)))
            .map(|c| change(c))
            .collect();
        for c in &self.changes {
            object_keys
                .entry(c.object.key())
                .or_insert_with(|| KeyView {
                    kind: c.object.kind.clone(),
                    name: c.object.name.clone(),
                    namespace: c.object.namespace.clone(),
                    api_version: c.object.api_version.clone(),
                });
            file_changes
                .entry(c.file.clone())
                .or_default()
                .entry(c.object.key())
                .or_default()
                .push(change(c));
        }
        // `.Changed.Objects`: each object's changes from one file, the last one, as Flux's
        // `Result.Objects()` overwrites (an object in two files is a copied manifest).
        for per_file in file_changes.values() {
            for (key, list) in per_file {
                objects.insert(key.clone(), list.clone());
            }
        }
        let updated = self
            .updated
            .as_ref()
            .filter(|_| legacy)
            .map(|images| updated_view(&self.changes, images));
        DataView {
            automation_object: format!("{}/{}", self.namespace, self.name),
            updated: updated.clone(),
            changed: ChangedView {
                file_changes,
                objects,
                changes,
                object_keys,
                image_result: updated,
            },
            values: self.values.clone(),
        }
    }
}

/// A parsed message template.
///
/// ```
/// use tagsmith_git_commit::{ChangeRecord, MessageTemplate, ObjectIdentifier, TemplateData};
/// let t = MessageTemplate::parse(
///     "Update images\n{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}",
/// ).unwrap();
/// let change = ChangeRecord {
///     file: "apps/app.yaml".into(),
///     object: ObjectIdentifier { kind: "Deployment".into(), name: "app".into(), ..Default::default() },
///     old_value: "app:1.0.0".into(),
///     new_value: "app:1.1.0".into(),
///     setter: "flux-system:app".into(),
/// };
/// let data = TemplateData::new("flux-system", "apps", &[change], Default::default());
/// assert_eq!(t.render(&data).unwrap(), "Update images\n- app:1.0.0 -> app:1.1.0\n");
/// ```
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    source: String,
    /// Renders Flux's `v1beta1`/`v1beta2` data (`.Updated`).
    legacy: bool,
}

/// The fields Flux's image-automation-controller v1 removed from the template data.
const REMOVED_FIELDS: [&str; 2] = [".Updated", ".Changed.ImageResult"];

/// Whether `source` uses `.Updated` or `.Changed.ImageResult` (in an action, not in the
/// text around): data that Flux gave `v1beta1`/`v1beta2` automations up to Flux 2.6 and
/// removed in v1 (Flux 2.7 refuses such a template for a v1 object).
pub fn uses_updated(source: &str) -> bool {
    REMOVED_FIELDS.iter().any(|f| mentions_field(source, f))
}

impl MessageTemplate {
    /// Parses a template with Flux v1's data model; a syntax error names its line and
    /// column, and `.Updated`/`.Changed.ImageResult` are refused as Flux v1 refuses them.
    pub fn parse(source: &str) -> Result<Self, GitError> {
        for removed in REMOVED_FIELDS {
            if mentions_field(source, removed) {
                return Err(GitError::Template {
                    message: format!(
                        "template uses {removed}, which Flux removed; use .Changed.FileChanges, .Changed.Objects or .Changed.Changes"
                    ),
                });
            }
        }
        Self::parse_with(source, false)
    }

    /// Parses a template of a `v1beta1`/`v1beta2` automation, whose data also has
    /// `.Updated` (`.Files`, `.Objects`, `.Images`) and `.Changed.ImageResult`, as Flux
    /// up to 2.6 rendered them; render it with [`TemplateData::with_updated`].
    pub fn parse_legacy(source: &str) -> Result<Self, GitError> {
        Self::parse_with(source, true)
    }

    fn parse_with(source: &str, legacy: bool) -> Result<Self, GitError> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(GitError::Template {
                message: format!(
                    "the template is {} bytes, over the limit of {MAX_TEMPLATE_BYTES}",
                    source.len()
                ),
            });
        }
        // Syntax errors point into the template as written, before any rewrite.
        gotmpl::Template::new("commit message")
            .funcs(crate::sprig::functions())
            .parse(source)
            .map_err(|e| GitError::Template {
                message: e.to_string(),
            })?;
        Ok(MessageTemplate {
            source: rewrite_key_fields(source),
            legacy,
        })
    }

    /// Flux's default template.
    pub fn flux_default() -> Self {
        MessageTemplate {
            source: DEFAULT_MESSAGE_TEMPLATE.to_string(),
            legacy: false,
        }
    }

    /// The template, or Flux's default when `source` is empty or absent.
    pub fn or_default(source: Option<&str>) -> Result<Self, GitError> {
        match source.filter(|s| !s.trim().is_empty()) {
            Some(s) => Self::parse(s),
            None => Ok(Self::flux_default()),
        }
    }

    /// Renders the message (at most [`MAX_MESSAGE_BYTES`]).
    pub fn render(&self, data: &TemplateData) -> Result<String, GitError> {
        let failed = |message: String| GitError::Template { message };
        if self.legacy && data.updated.is_none() && uses_updated(&self.source) {
            return Err(failed(
                "the template uses .Updated but the data has no image refs (TemplateData::with_updated)".into(),
            ));
        }
        let value =
            gotmpl::ser::to_value(&data.view(self.legacy)).map_err(|e| failed(e.to_string()))?;
        let template = gotmpl::Template::new("commit message")
            .funcs(crate::sprig::functions())
            .max_range_iters(MAX_RANGE_ITERATIONS)
            .parse(&self.source)
            .map_err(|e| failed(e.to_string()))?;
        let mut out = Bounded::default();
        match template.execute_fmt(&mut out, &value) {
            Ok(()) => Ok(out.text),
            Err(_) if out.over => Err(failed(format!(
                "the message is longer than {MAX_MESSAGE_BYTES} bytes"
            ))),
            Err(gotmpl::TemplateError::RangeIterLimit) => Err(failed(format!(
                "range ran more than {MAX_RANGE_ITERATIONS} times"
            ))),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// The rendered message, refusing to grow past [`MAX_MESSAGE_BYTES`].
#[derive(Default)]
struct Bounded {
    text: String,
    over: bool,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > MAX_MESSAGE_BYTES {
            self.over = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// Whether `field` occurs as a field reference in an action (not as a prefix of a longer
/// name, and not in the text around the actions).
fn mentions_field(source: &str, field: &str) -> bool {
    action_spans(source).into_iter().any(|(start, end)| {
        let action = &source[start..end];
        action.match_indices(field).any(|(i, _)| {
            action[i + field.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
    })
}

/// Rewrites `$key.Kind` (and `.Name`, `.Namespace`, `.APIVersion`) into
/// `(index $.Changed.ObjectKeys $key).Kind` wherever `$key` is the key variable of a range
/// over `.Changed.Objects` or `.Updated.Objects`, or over one file's objects from
/// `.Changed.FileChanges` (`range $file, $objects := .Changed.FileChanges` then
/// `range $key, $changes := $objects`) or `.Updated.Files` (`range $file, $result :=
/// .Updated.Files` then `range $key, $images := $result.Objects`). In Go those keys are structs with these fields; here they are the text Go
/// prints for them, and `ObjectKeys` maps that text back to the fields. Other variables
/// and text outside `{{ }}` are left alone.
pub fn rewrite_key_fields(source: &str) -> String {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static RANGE: OnceLock<regex::Regex> = OnceLock::new();
    static FIELD: OnceLock<regex::Regex> = OnceLock::new();
    let range = RANGE.get_or_init(|| {
        regex::Regex::new(
            r"range\s+(\$\w+)\s*,\s*(\$\w+)\s*:=\s*(\$?\.Changed\.Objects|\$?\.Changed\.FileChanges|\$?\.Updated\.Objects|\$?\.Updated\.Files|\$?\.Changed\.ImageResult\.Objects|\$?\.Changed\.ImageResult\.Files|\$\w+\.Objects|\$\w+)(?:\s|-?\}\}|$)",
        )
        .expect("valid regex")
    });
    let field = FIELD.get_or_init(|| {
        regex::Regex::new(r"(\$\w+)\.(Kind|Name|Namespace|APIVersion)\b").expect("valid regex")
    });
    let actions = action_spans(source);
    // Value variables of a range over `.Changed.FileChanges` (a file's objects) and over
    // `.Updated.Files` (a file's result, whose `.Objects` are its objects).
    let mut per_file: HashSet<&str> = HashSet::new();
    let mut file_results: HashSet<&str> = HashSet::new();
    let mut keys: HashSet<&str> = HashSet::new();
    for &(start, end) in &actions {
        for caps in range.captures_iter(&source[start..end]) {
            let (key, value, over) = (
                caps.get(1).map_or("", |m| m.as_str()),
                caps.get(2).map_or("", |m| m.as_str()),
                caps.get(3).map_or("", |m| m.as_str()),
            );
            match over.trim_start_matches('$') {
                ".Changed.FileChanges" => {
                    per_file.insert(value);
                }
                ".Updated.Files" | ".Changed.ImageResult.Files" => {
                    file_results.insert(value);
                }
                ".Changed.Objects" | ".Updated.Objects" | ".Changed.ImageResult.Objects" => {
                    keys.insert(key);
                }
                _ if per_file.contains(over) => {
                    keys.insert(key);
                }
                _ if over
                    .strip_suffix(".Objects")
                    .is_some_and(|v| file_results.contains(v)) =>
                {
                    keys.insert(key);
                }
                _ => {}
            }
        }
    }
    if keys.is_empty() {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len() + 64);
    let mut last = 0;
    for &(start, end) in &actions {
        out.push_str(&source[last..start]);
        let action = &source[start..end];
        out.push_str(&field.replace_all(action, |caps: &regex::Captures<'_>| {
            let var = &caps[1];
            if keys.contains(var) {
                format!("(index $.Changed.ObjectKeys {var}).{}", &caps[2])
            } else {
                caps[0].to_string()
            }
        }));
        last = end;
    }
    out.push_str(&source[last..]);
    out
}

/// Byte ranges of the `{{ ... }}` actions in a template (delimiters included).
fn action_spans(source: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(open) = source[from..].find("{{") {
        let start = from + open;
        let Some(close) = source[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + close + 2;
        spans.push((start, end));
        from = end;
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_object_key_variables_are_rewritten() {
        let t =
            "{{ range $r, $c := .Changed.Objects -}}{{ $r.Kind }} {{ $r.Kinds }} $r.Name{{ end }}\
                 {{ range $k, $v := .Values }}{{ $k.Name }}{{ end }}";
        assert_eq!(
            rewrite_key_fields(t),
            "{{ range $r, $c := .Changed.Objects -}}{{ (index $.Changed.ObjectKeys $r).Kind }} \
             {{ $r.Kinds }} $r.Name{{ end }}{{ range $k, $v := .Values }}{{ $k.Name }}{{ end }}"
        );
        // Keys of a file's objects, reached through the value variable of FileChanges.
        let t = "{{ range $f, $objs := .Changed.FileChanges }}{{ range $id, $_ := $objs }}\
                 {{ $id.APIVersion }}{{ $id.Namespace }}{{ end }}{{ end }}";
        let out = rewrite_key_fields(t);
        assert!(
            out.contains("(index $.Changed.ObjectKeys $id).APIVersion"),
            "{out}"
        );
        assert!(
            out.contains("(index $.Changed.ObjectKeys $id).Namespace"),
            "{out}"
        );
        // Nothing to rewrite: the template comes back as it was.
        let t = "{{ range .Changed.Changes }}{{ .Setter }}{{ end }}";
        assert_eq!(rewrite_key_fields(t), t);
    }

    #[test]
    fn keys_print_and_sort_as_gos_struct() {
        let key = |api: &str, kind: &str, name: &str, ns: &str| {
            ObjectIdentifier {
                api_version: api.into(),
                kind: kind.into(),
                name: name.into(),
                namespace: ns.into(),
            }
            .key()
        };
        assert_eq!(
            key("apps/v1", "Deployment", "app", "default"),
            "{{{apps/v1 Deployment} {app default}}}"
        );
        assert_eq!(
            key("kustomize.config.k8s.io/v1beta1", "Kustomization", "", ""),
            "{{{kustomize.config.k8s.io/v1beta1 Kustomization} { }}}"
        );
        // Go orders by apiVersion, kind, name, namespace; so does the text.
        let mut keys = vec![
            key("apps/v1", "Deployment", "app2", "a"),
            key("batch/v1", "CronJob", "a", "a"),
            key("apps/v1", "Deployment", "app", "z"),
            key("apps/v1", "DaemonSet", "x", "x"),
            key("apps/v1", "Deployment", "app", "y"),
            key("apps/v1", "Deployment", "", ""),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                key("apps/v1", "DaemonSet", "x", "x"),
                key("apps/v1", "Deployment", "", ""),
                key("apps/v1", "Deployment", "app", "y"),
                key("apps/v1", "Deployment", "app", "z"),
                key("apps/v1", "Deployment", "app2", "a"),
                key("batch/v1", "CronJob", "a", "a"),
            ]
        );
        // The documented difference: a kind or namespace that is a prefix of another in the
        // same position sorts after it (`}` sorts after letters); Go puts it first.
        assert!(key("apps/v1", "Deployment", "app", "") > key("apps/v1", "Deployment", "app", "z"));
    }
}
