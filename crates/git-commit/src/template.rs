//! Commit messages from Go `text/template` templates with Flux's data model
//! (`ImageUpdateAutomation.spec.git.commit.messageTemplate`), rendered by `gotmpl`, a port
//! of Go's `text/template` (maps ranged in sorted key order, trim markers, pipes,
//! variables, `printf`).
//!
//! Flux's data: `.AutomationObject` (`namespace/name`), `.Changed.FileChanges` (file ->
//! object -> changes), `.Changed.Objects` (object -> changes), `.Changed.Changes` (all
//! changes: `.OldValue`, `.NewValue`, `.Setter`), `.Values`
//! (`messageTemplateValues`). Go keys the object maps by a struct; here the key is the
//! string `Kind/namespace/name` (what Go would print for the identifier is not stable
//! across Flux versions either), and each change also carries `.Kind`, `.Name`,
//! `.Namespace`, `.APIVersion` and `.File`. `.Updated` and `.Changed.ImageResult` were
//! removed from Flux; using them is an error that says so, as in Flux. Sprig functions
//! are not available.

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
    /// `Kind/namespace/name` (namespace omitted when empty): the object maps' key.
    pub fn key(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
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

#[derive(Serialize)]
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
struct ChangedView {
    file_changes: BTreeMap<String, BTreeMap<String, Vec<ChangeView>>>,
    objects: BTreeMap<String, Vec<ChangeView>>,
    changes: Vec<ChangeView>,
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
        for c in &self.changes {
            file_changes
                .entry(c.file.clone())
                .or_default()
                .entry(c.object.key())
                .or_default()
                .push(change(c));
            objects.entry(c.object.key()).or_default().push(change(c));
        }
        DataView {
            automation_object: format!("{}/{}", self.namespace, self.name),
            changed: ChangedView {
                file_changes,
                objects,
                changes: self.changes.iter().map(change).collect(),
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
        gotmpl::Template::new("commit message")
            .parse(source)
            .map_err(|e| GitError::Template {
                message: e.to_string(),
            })?;
        Ok(MessageTemplate {
            source: source.to_string(),
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
