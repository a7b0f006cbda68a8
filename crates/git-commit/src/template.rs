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
//! `.Changed.ImageResult` were removed from Flux; using them is an error that says so, as
//! in Flux. The Sprig functions Flux's templates use most are there ([`crate::sprig`]).

use crate::GitError;
use serde::Serialize;
use std::collections::BTreeMap;

/// Flux's default commit message (image-automation-controller v1).
pub const DEFAULT_MESSAGE_TEMPLATE: &str = "Update from image update automation";

/// An object a change was made in.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
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
    pub object: ObjectRef,
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
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataView {
    automation_object: String,
    changed: ChangedView,
    values: BTreeMap<String, String>,
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
        }
    }

    fn view(&self) -> DataView {
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
        DataView {
            automation_object: format!("{}/{}", self.namespace, self.name),
            changed: ChangedView {
                file_changes,
                objects,
                changes,
                object_keys,
            },
            values: self.values.clone(),
        }
    }
}

/// A parsed message template.
///
/// ```
/// use tagsmith_git_commit::{ChangeRecord, MessageTemplate, ObjectRef, TemplateData};
/// let t = MessageTemplate::parse(
///     "Update images\n{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}",
/// ).unwrap();
/// let change = ChangeRecord {
///     file: "apps/app.yaml".into(),
///     object: ObjectRef { kind: "Deployment".into(), name: "app".into(), ..Default::default() },
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
}

impl MessageTemplate {
    /// Parses a template; a syntax error names its line and column.
    pub fn parse(source: &str) -> Result<Self, GitError> {
        for removed in [".Updated", ".Changed.ImageResult"] {
            if mentions_field(source, removed) {
                return Err(GitError::Template {
                    message: format!(
                        "template uses {removed}, which Flux removed; use .Changed.FileChanges, .Changed.Objects or .Changed.Changes"
                    ),
                });
            }
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
        })
    }

    /// Flux's default template.
    pub fn flux_default() -> Self {
        MessageTemplate {
            source: DEFAULT_MESSAGE_TEMPLATE.to_string(),
        }
    }

    /// The template, or Flux's default when `source` is empty or absent.
    pub fn or_default(source: Option<&str>) -> Result<Self, GitError> {
        match source.filter(|s| !s.trim().is_empty()) {
            Some(s) => Self::parse(s),
            None => Ok(Self::flux_default()),
        }
    }

    /// Renders the message.
    pub fn render(&self, data: &TemplateData) -> Result<String, GitError> {
        let value = gotmpl::ser::to_value(&data.view()).map_err(|e| GitError::Template {
            message: e.to_string(),
        })?;
        gotmpl::Template::new("commit message")
            .funcs(crate::sprig::functions())
            .parse(&self.source)
            .and_then(|t| t.execute_to_string(&value))
            .map_err(|e| GitError::Template {
                message: e.to_string(),
            })
    }
}

/// Whether `field` occurs as a field reference (not as a prefix of a longer name).
fn mentions_field(source: &str, field: &str) -> bool {
    source.match_indices(field).any(|(i, _)| {
        source[i + field.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Rewrites `$key.Kind` (and `.Name`, `.Namespace`, `.APIVersion`) into
/// `(index $.Changed.ObjectKeys $key).Kind` wherever `$key` is the key variable of a range
/// over `.Changed.Objects`, or over one file's objects from `.Changed.FileChanges`
/// (`range $file, $objects := .Changed.FileChanges` then `range $key, $changes :=
/// $objects`). In Go those keys are structs with these fields; here they are the text Go
/// prints for them, and `ObjectKeys` maps that text back to the fields. Other variables
/// and text outside `{{ }}` are left alone.
pub fn rewrite_key_fields(source: &str) -> String {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static RANGE: OnceLock<regex::Regex> = OnceLock::new();
    static FIELD: OnceLock<regex::Regex> = OnceLock::new();
    let range = RANGE.get_or_init(|| {
        regex::Regex::new(
            r"range\s+(\$\w+)\s*,\s*(\$\w+)\s*:=\s*(\$?\.Changed\.Objects|\$?\.Changed\.FileChanges|\$\w+)(?:\s|-?\}\}|$)",
        )
        .expect("valid regex")
    });
    let field = FIELD.get_or_init(|| {
        regex::Regex::new(r"(\$\w+)\.(Kind|Name|Namespace|APIVersion)\b").expect("valid regex")
    });
    let actions = action_spans(source);
    let mut per_file: HashSet<&str> = HashSet::new();
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
                ".Changed.Objects" => {
                    keys.insert(key);
                }
                _ if per_file.contains(over) => {
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
            ObjectRef {
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
