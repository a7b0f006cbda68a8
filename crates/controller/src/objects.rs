//! Flux's kinds as the API serves them, and reading each object the way the facade's CRD
//! reader reads YAML: the object is serialised to JSON (JSON is YAML) and handed to
//! [`FluxObjects::add_text`], so the controller has no second implementation of Flux's
//! semantics. An object the reader refuses is that object's failure alone.

use kube::core::{ApiResource, DynamicObject};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tagsmith::crd::FluxObjects;
use tagsmith::ObjectError;

/// The annotation `flux reconcile` sets to request a reconciliation.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// The finalizer Flux's image controllers put on their objects; removed on deletion so
/// objects Flux reconciled before can be deleted under tagsmith.
pub const FLUX_FINALIZER: &str = "finalizers.fluxcd.io";
/// Annotations with this prefix are copied onto every Event about the object, as Flux does.
pub const EVENT_ANNOTATION_PREFIX: &str = "event.toolkit.fluxcd.io/";

/// The Flux kinds the controller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FluxKind {
    /// `image.toolkit.fluxcd.io/v1` ImageRepository.
    ImageRepository,
    /// `image.toolkit.fluxcd.io/v1` ImagePolicy.
    ImagePolicy,
    /// `image.toolkit.fluxcd.io/v1` ImageUpdateAutomation.
    ImageUpdateAutomation,
    /// `source.toolkit.fluxcd.io/v1` GitRepository (read, never written).
    GitRepository,
}

impl FluxKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            FluxKind::ImageRepository => "ImageRepository",
            FluxKind::ImagePolicy => "ImagePolicy",
            FluxKind::ImageUpdateAutomation => "ImageUpdateAutomation",
            FluxKind::GitRepository => "GitRepository",
        }
    }

    /// Group, version, kind and plural, as the CRDs define them.
    pub fn api_resource(self) -> ApiResource {
        let (group, plural) = match self {
            FluxKind::ImageRepository => ("image.toolkit.fluxcd.io", "imagerepositories"),
            FluxKind::ImagePolicy => ("image.toolkit.fluxcd.io", "imagepolicies"),
            FluxKind::ImageUpdateAutomation => {
                ("image.toolkit.fluxcd.io", "imageupdateautomations")
            }
            FluxKind::GitRepository => ("source.toolkit.fluxcd.io", "gitrepositories"),
        };
        ApiResource {
            group: group.into(),
            version: "v1".into(),
            api_version: format!("{group}/v1"),
            kind: self.as_str().into(),
            plural: plural.into(),
        }
    }

    /// The Flux controller whose work this is: Events and metrics carry its name, so Flux's
    /// tools and alerts keep working when tagsmith replaces it.
    pub fn controller(self) -> &'static str {
        match self {
            FluxKind::ImageUpdateAutomation | FluxKind::GitRepository => {
                "image-automation-controller"
            }
            _ => "image-reflector-controller",
        }
    }

    /// `<plural>.<group> "<name>" not found`, the API server's words for a missing object.
    pub fn not_found(self, name: &str) -> String {
        let r = self.api_resource();
        format!("{}.{} \"{name}\" not found", r.plural, r.group)
    }
}

/// `namespace/name` of an object, for logs and maps.
pub fn key_of(obj: &DynamicObject) -> String {
    format!(
        "{}/{}",
        obj.metadata.namespace.as_deref().unwrap_or_default(),
        obj.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The object's namespace (empty for none).
pub fn namespace_of(obj: &DynamicObject) -> &str {
    obj.metadata.namespace.as_deref().unwrap_or_default()
}

/// The object's name.
pub fn name_of(obj: &DynamicObject) -> &str {
    obj.metadata.name.as_deref().unwrap_or_default()
}

/// `metadata.generation` (0 when absent).
pub fn generation_of(obj: &DynamicObject) -> i64 {
    obj.metadata.generation.unwrap_or(0)
}

/// The value of `reconcile.fluxcd.io/requestedAt`, if set.
pub fn requested_at(obj: &DynamicObject) -> Option<&str> {
    obj.metadata
        .annotations
        .as_ref()?
        .get(RECONCILE_REQUEST_ANNOTATION)
        .map(String::as_str)
}

/// `spec.suspend`.
pub fn suspended(obj: &DynamicObject) -> bool {
    obj.data["spec"]["suspend"] == Value::Bool(true)
}

/// A string at a `/`-separated JSON pointer into the object (`/spec/image`).
pub fn str_at<'a>(obj: &'a DynamicObject, pointer: &str) -> Option<&'a str> {
    obj.data.pointer(pointer).and_then(Value::as_str)
}

/// The path an object's reading errors name: `cluster:<Kind>/<namespace>/<name>`.
pub fn origin_path(kind: FluxKind, obj: &DynamicObject) -> PathBuf {
    PathBuf::from(format!(
        "cluster:{}/{}/{}",
        kind.as_str(),
        namespace_of(obj),
        name_of(obj)
    ))
}

/// What the reader sees of an object: `apiVersion`, `kind`, name, namespace, labels and
/// `spec` (not `status`, not managed fields: they are large and mean nothing to it).
pub(crate) fn reader_json(kind: FluxKind, obj: &DynamicObject) -> String {
    let mut metadata = json!({
        "name": name_of(obj),
        "namespace": namespace_of(obj),
    });
    if let Some(labels) = &obj.metadata.labels {
        metadata["labels"] = json!(labels);
    }
    json!({
        "apiVersion": kind.api_resource().api_version,
        "kind": kind.as_str(),
        "metadata": metadata,
        "spec": obj.data.get("spec").cloned().unwrap_or(Value::Null),
    })
    .to_string()
}

/// Reads `obj` (and the objects it needs, `extra`) with the facade's CRD reader. A read
/// failure of `obj` itself is returned as its error, with the reader's `file:line:` prefix
/// taken off (the line of a one-line JSON document says nothing).
pub fn read_objects(
    kind: FluxKind,
    obj: &DynamicObject,
    extra: &[(FluxKind, &DynamicObject)],
) -> Result<FluxObjects, ObjectError> {
    let mut objects = FluxObjects::default();
    let path = origin_path(kind, obj);
    objects.add_text(&path, &reader_json(kind, obj));
    if let Some(failure) = objects.failures.first() {
        return Err(without_location(&failure.error, &path));
    }
    for (extra_kind, extra_obj) in extra {
        objects.add_text(
            &origin_path(*extra_kind, extra_obj),
            &reader_json(*extra_kind, extra_obj),
        );
    }
    Ok(objects)
}

/// The error's message without its `file:line: ` prefix.
pub fn without_location(error: &ObjectError, path: &Path) -> ObjectError {
    let mut error = error.clone();
    let prefix = format!(
        "{}:{}: ",
        error.file.as_deref().unwrap_or(&path.display().to_string()),
        error.line.unwrap_or(1)
    );
    if let Some(rest) = error.message.strip_prefix(&prefix) {
        error.message = rest.to_string();
    }
    error
}

/// A Namespace object with `labels`, for `accessFrom` checks (JSON is YAML).
pub fn namespace_json(name: &str, labels: &std::collections::BTreeMap<String, String>) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn object(kind: FluxKind, spec: Value) -> DynamicObject {
        let mut obj = DynamicObject::new("app", &kind.api_resource()).within("apps");
        obj.data = json!({ "spec": spec, "status": {"observedGeneration": -1} });
        obj
    }

    #[test]
    fn an_object_from_the_api_reads_as_its_yaml_would() {
        let repo = object(
            FluxKind::ImageRepository,
            json!({"image": "127.0.0.1:5000/app", "interval": "1m", "insecure": true}),
        );
        let objects = read_objects(FluxKind::ImageRepository, &repo, &[]).unwrap();
        let read = &objects.repositories[0];
        assert_eq!(read.origin.key.to_string(), "apps:app");
        assert_eq!(read.interval, std::time::Duration::from_secs(60));
        assert!(read.insecure);
    }

    #[test]
    fn a_refused_object_fails_with_the_field_and_without_a_json_line_number() {
        let policy = object(
            FluxKind::ImagePolicy,
            json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">= 1.0 <"}}}),
        );
        let error = read_objects(FluxKind::ImagePolicy, &policy, &[]).unwrap_err();
        assert!(
            error.message.starts_with("spec.policy.semver.range: "),
            "{error:?}"
        );
        assert_eq!(error.code, "invalid_range");
    }

    #[test]
    fn api_resources_name_flux_crds() {
        let r = FluxKind::ImageUpdateAutomation.api_resource();
        assert_eq!(r.api_version, "image.toolkit.fluxcd.io/v1");
        assert_eq!(r.plural, "imageupdateautomations");
        assert_eq!(
            FluxKind::ImageRepository.not_found("podinfo"),
            "imagerepositories.image.toolkit.fluxcd.io \"podinfo\" not found"
        );
    }
}
