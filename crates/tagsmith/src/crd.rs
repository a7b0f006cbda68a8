//! Flux's own CRDs, read from YAML: `ImageRepository`, `ImagePolicy`,
//! `ImageUpdateAutomation` (`image.toolkit.fluxcd.io/v1beta1`, `v1beta2`, `v1`),
//! `GitRepository` (`source.toolkit.fluxcd.io`) and `Kustomization`
//! (`kustomize.toolkit.fluxcd.io`), plus the `Namespace`, `ConfigMap` and `Secret` objects
//! they may refer to. Where the versions differ, both spellings are read (v1beta1's
//! `spec.update.setters` strategy name, `spec.git.checkout.branch`).
//!
//! Reading never stops at a bad object: an object that cannot be used (a bad range, a name
//! Kubernetes would refuse, an unsupported apiVersion, a file that does not parse) becomes a
//! [`ObjectFailure`] naming its file, line and field, and every other object is read, as the
//! API server refuses one object and applies the rest.

use crate::error::{ObjectCode, ObjectError};
use crate::names::{validate_name, validate_namespace, ObjectKey};
use crate::yaml::{parse_documents, Node};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tagsmith_git_commit::CheckoutRef;
use tagsmith_image_policy_core::{
    FilterTags, Order, PolicyKind, PolicySpec, DEFAULT_EXCLUSION_LIST,
};

/// The API versions of the Flux groups that tagsmith reads (Flux 2.0 to 2.7).
pub const FLUX_API_VERSIONS: [&str; 3] = ["v1beta1", "v1beta2", "v1"];

/// The kinds of `image.toolkit.fluxcd.io`.
const IMAGE_KINDS: [&str; 3] = ["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"];

/// Where an object was read, and its validated `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `metadata.namespace` (`default` when absent, as kubectl applies it) and
    /// `metadata.name`, validated as Kubernetes names.
    pub key: ObjectKey,
    /// The file the object was read from, relative to the tree it was read from.
    pub file: PathBuf,
    /// The line its document starts on.
    pub line: usize,
    /// `apiVersion`, e.g. `image.toolkit.fluxcd.io/v1beta2`.
    pub api_version: String,
}

impl Origin {
    /// `namespace:name`, the form setter markers use.
    pub fn key(&self) -> String {
        self.key.to_string()
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        self.key.namespace()
    }

    /// The name.
    pub fn name(&self) -> &str {
        self.key.name()
    }

    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }

    /// An error about this object's `field`, at its document's line.
    pub fn error(&self, code: &str, field: &str, reason: impl AsRef<str>) -> ObjectError {
        ObjectError::at(
            code,
            &self.file.display().to_string(),
            self.line,
            field,
            reason,
        )
    }
}

/// `ImageRepository`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRepository {
    /// Where it was read.
    pub origin: Origin,
    /// `spec.image`.
    pub image: String,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.timeout`: the bound on one whole scan (Flux's default: the interval; at least
    /// one second).
    pub timeout: Duration,
    /// `spec.exclusionList` (Flux's default when absent).
    pub exclusion_list: Vec<String>,
    /// `spec.insecure`.
    pub insecure: bool,
    /// `spec.secretRef.name`: a Docker config secret in the repository's namespace.
    pub secret_ref: Option<ObjectKey>,
    /// `spec.certSecretRef.name`: CA certificates, in the repository's namespace.
    pub cert_secret_ref: Option<ObjectKey>,
    /// `spec.accessFrom.namespaceSelectors`: which other namespaces' policies may use it
    /// (`None`: only its own namespace).
    pub access_from: Option<Vec<LabelSelector>>,
    /// `spec.suspend`: no scans; the last (cached) scan stands, as Flux keeps its status.
    pub suspend: bool,
}

/// `ImagePolicy.spec.digestReflectionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DigestReflection {
    /// Never resolve digests (the default).
    Never,
    /// Resolve once per chosen tag.
    IfNotPresent,
    /// Resolve on every run.
    Always,
}

/// `ImagePolicy`.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePolicyObject {
    /// Where it was read.
    pub origin: Origin,
    /// `spec.imageRepositoryRef` (namespace: the policy's unless given).
    pub repository: ObjectKey,
    /// The selection spec.
    pub spec: PolicySpec,
    /// `spec.digestReflectionPolicy`.
    pub digest_reflection: DigestReflection,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `spec.suspend`: Flux stops updating the policy's latest image; without that status
    /// to reuse, `run` reports the policy as suspended and offers it to no automation.
    pub suspend: bool,
}

/// `ImageUpdateAutomation`.
#[derive(Debug, Clone, Serialize)]
pub struct Automation {
    /// Where it was read.
    pub origin: Origin,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.sourceRef` of a GitRepository (namespace: the automation's unless given).
    pub source: Option<ObjectKey>,
    /// `spec.git.checkout.ref.branch`.
    pub checkout_branch: Option<String>,
    /// `spec.git.checkout.ref.tag` (HEAD detached; a push branch is then required).
    pub checkout_tag: Option<String>,
    /// `spec.git.checkout.ref.commit` (HEAD detached; a push branch is then required).
    pub checkout_commit: Option<String>,
    /// `spec.git.checkout.ref.semver`: the highest tag in this range (HEAD detached).
    pub checkout_semver: Option<String>,
    /// `spec.git.checkout.ref.name`: a full ref name such as `refs/pull/42/head` (HEAD
    /// detached).
    pub checkout_name: Option<String>,
    /// `spec.git.commit.author.name`.
    pub author_name: String,
    /// `spec.git.commit.author.email`.
    pub author_email: String,
    /// `spec.git.commit.messageTemplate`.
    pub message_template: Option<String>,
    /// `spec.git.commit.messageTemplateValues`.
    pub message_template_values: BTreeMap<String, String>,
    /// `spec.git.commit.signingKey.secretRef.name`, in the automation's namespace.
    pub signing_key_secret: Option<ObjectKey>,
    /// `spec.git.push.branch`.
    pub push_branch: Option<String>,
    /// `spec.git.push.refspec`.
    pub push_refspec: Option<String>,
    /// `spec.git.push.options`, as `git push -o` takes them: `key=value`, or `key` for an
    /// empty value (GitLab's `merge_request.create: ""`).
    pub push_options: Vec<String>,
    /// `spec.update.path`, relative to the repository root (never absolute, never `..`).
    pub update_path: String,
    /// `spec.policySelector` (`matchLabels` and `matchExpressions`).
    pub policy_selector: LabelSelector,
    /// `spec.suspend`: Flux leaves a suspended automation alone; so does `run`.
    pub suspend: bool,
}

impl Automation {
    /// Whether the object is of an API version whose controllers rendered `.Updated` in
    /// commit templates (`v1beta1` and `v1beta2`, up to Flux 2.6).
    pub fn renders_updated(&self) -> bool {
        !self.origin.api_version.ends_with("/v1")
    }
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`), as
/// `ImageUpdateAutomation.spec.policySelector` holds it.
///
/// ```
/// use std::collections::BTreeMap;
/// use tagsmith::crd::{LabelRequirement, LabelSelector, SelectorOperator};
/// let selector = LabelSelector {
///     match_labels: BTreeMap::from([("team".into(), "shop".into())]),
///     match_expressions: vec![LabelRequirement {
///         key: "tier".into(),
///         operator: SelectorOperator::NotIn,
///         values: vec!["canary".into()],
///     }],
/// };
/// let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
///     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
/// };
/// assert!(selector.matches(&labels(&[("team", "shop")])));
/// assert!(!selector.matches(&labels(&[("team", "shop"), ("tier", "canary")])));
/// assert!(!selector.matches(&labels(&[])));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with these values.
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    pub match_expressions: Vec<LabelRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelRequirement {
    /// The label key.
    pub key: String,
    /// How the label is compared.
    pub operator: SelectorOperator,
    /// The values for `In` and `NotIn` (empty for the others).
    pub values: Vec<String>,
}

/// A `matchExpressions` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelectorOperator {
    /// The label is set to one of the values.
    In,
    /// The label is absent or set to none of the values.
    NotIn,
    /// The label is set.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl LabelSelector {
    /// Whether `labels` satisfy every label and every requirement (an empty selector
    /// matches everything, as in Kubernetes).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    SelectorOperator::In => value.is_some_and(|v| r.values.contains(v)),
                    SelectorOperator::NotIn => value.is_none_or(|v| !r.values.contains(v)),
                    SelectorOperator::Exists => value.is_some(),
                    SelectorOperator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// `GitRepository` (for `--url` and `sourceRef`).
#[derive(Debug, Clone, Serialize)]
pub struct GitRepositoryObject {
    /// Where it was read.
    pub origin: Origin,
    /// `spec.url`.
    pub url: String,
    /// `spec.ref.branch`.
    pub branch: Option<String>,
    /// `spec.ref.tag`.
    pub tag: Option<String>,
    /// `spec.ref.commit`.
    pub commit: Option<String>,
    /// `spec.ref.semver`.
    pub semver: Option<String>,
    /// `spec.ref.name`.
    pub name: Option<String>,
    /// `spec.secretRef.name`, in the GitRepository's namespace.
    pub secret_ref: Option<ObjectKey>,
}

/// A Flux `Kustomization` (`kustomize.toolkit.fluxcd.io`): what a cluster applies from the
/// repository.
#[derive(Debug, Clone, Serialize)]
pub struct KustomizationObject {
    /// Where it was read.
    pub origin: Origin,
    /// `spec.path`, relative to the repository root (`./` when absent).
    pub path: String,
    /// `spec.sourceRef` (kind and `namespace:name`).
    pub source: Option<(String, ObjectKey)>,
    /// `spec.postBuild.substitute`.
    pub substitute: BTreeMap<String, String>,
    /// `spec.postBuild.substituteFrom`: kind (`ConfigMap` or `Secret`), name (in the
    /// Kustomization's namespace), optional.
    pub substitute_from: Vec<(String, ObjectKey, bool)>,
    /// `spec.suspend`.
    pub suspend: bool,
}

/// A plain Kubernetes object tagsmith reads for what Flux objects refer to: `Namespace`
/// labels (for `accessFrom`), `ConfigMap` and `Secret` data (for `substituteFrom`).
#[derive(Debug, Clone, Serialize)]
pub struct PlainObject {
    /// `Namespace`, `ConfigMap` or `Secret`.
    pub kind: String,
    /// Namespace (empty for a Namespace) and name.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `data` (Secret values decoded from base64) and `stringData`; values that SOPS
    /// encrypted (`ENC[...]`) are left out.
    pub data: BTreeMap<String, String>,
    /// Where it was read.
    pub file: PathBuf,
    /// The line its document starts on.
    pub line: usize,
}

/// An object (or a file) that could not be used, and why. It fails alone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFailure {
    /// The kind (`ImagePolicy`...), or `file` for a file that could not be read.
    pub kind: String,
    /// `namespace:name`, when it could be read.
    pub object: Option<String>,
    /// Why.
    pub error: ObjectError,
}

/// Everything read from a tree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FluxObjects {
    /// ImageRepositories.
    pub repositories: Vec<ImageRepository>,
    /// ImagePolicies.
    pub policies: Vec<ImagePolicyObject>,
    /// ImageUpdateAutomations.
    pub automations: Vec<Automation>,
    /// GitRepositories.
    pub git_repositories: Vec<GitRepositoryObject>,
    /// Flux Kustomizations.
    pub kustomizations: Vec<KustomizationObject>,
    /// Namespaces, ConfigMaps and Secrets.
    pub plain: Vec<PlainObject>,
    /// Objects and files that could not be used.
    pub failures: Vec<ObjectFailure>,
    /// Things read but not acted on (never silently): one line each.
    pub warnings: Vec<String>,
}

/// Parses a Kubernetes/Go duration (`1m`, `5m30s`, `1h`, `500ms`, `1.5h`); `None` for
/// anything else, including values too large to represent (no panic on
/// `99999999999999999999h`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total = total.checked_add(Duration::try_from_secs_f64(number * scale).ok()?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Flux's precedence within one `ref`: commit, name, semver, tag, branch.
fn pick_ref(
    commit: &Option<String>,
    name: &Option<String>,
    semver: &Option<String>,
    tag: &Option<String>,
    branch: &Option<String>,
) -> Option<CheckoutRef> {
    let take = |field: &Option<String>, make: fn(String) -> CheckoutRef| field.clone().map(make);
    take(commit, CheckoutRef::Commit)
        .or_else(|| take(name, CheckoutRef::Name))
        .or_else(|| take(semver, CheckoutRef::SemVer))
        .or_else(|| take(tag, CheckoutRef::Tag))
        .or_else(|| take(branch, CheckoutRef::Branch))
}

struct Doc<'a> {
    file: &'a Path,
    node: &'a Node,
}

type Read<T> = Result<T, ObjectError>;

impl Doc<'_> {
    fn invalid(&self, node: Option<&Node>, field: &str, message: impl AsRef<str>) -> ObjectError {
        self.invalid_code(ObjectCode::InvalidObject.as_str(), node, field, message)
    }

    fn invalid_code(
        &self,
        code: &str,
        node: Option<&Node>,
        field: &str,
        message: impl AsRef<str>,
    ) -> ObjectError {
        ObjectError::at(
            code,
            &self.file.display().to_string(),
            node.map_or(self.node.line(), Node::line),
            field,
            message,
        )
    }

    fn str(&self, path: &str) -> Option<String> {
        self.node
            .at(path)
            .and_then(Node::as_str)
            .map(str::to_string)
    }

    /// A semver range field, checked now so that a bad range is reported with its line
    /// before anything is cloned.
    fn semver_range(&self, path: &str) -> Read<Option<String>> {
        let Some(range) = self.str(path) else {
            return Ok(None);
        };
        tagsmith_image_policy_core::Constraints::parse(&range)
            .map_err(|e| self.invalid_code(e.code(), self.node.at(path), path, e.to_string()))?;
        Ok(Some(range))
    }

    fn required(&self, path: &str) -> Read<String> {
        self.str(path)
            .ok_or_else(|| self.invalid(self.node.at(path), path, "is required"))
    }

    fn duration(&self, path: &str, default: Duration) -> Read<Duration> {
        match self.str(path) {
            None => Ok(default),
            Some(text) => parse_duration(&text).ok_or_else(|| {
                self.invalid(
                    self.node.at(path),
                    path,
                    format!("{text:?} is not a duration like 5m or 1h30m"),
                )
            }),
        }
    }

    fn bool(&self, path: &str) -> Read<bool> {
        match self.str(path).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(self.invalid(
                self.node.at(path),
                path,
                format!("{other:?} is not true or false"),
            )),
        }
    }

    fn string_map(&self, path: &str) -> BTreeMap<String, String> {
        match self.node.at(path) {
            Some(Node::Map(entries, _)) => entries
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// `true` when the scalar at `path` is YAML's true.
    fn flag(&self, path: &str) -> bool {
        self.node
            .at(path)
            .and_then(Node::as_str)
            .is_some_and(|v| matches!(v, "true" | "True" | "TRUE"))
    }

    /// A reference to another object: `name` at `path.name` (validated), in `namespace`.
    fn reference(&self, path: &str, namespace: &str) -> Read<Option<ObjectKey>> {
        let field = format!("{path}.name");
        let Some(name) = self.str(&field) else {
            return Ok(None);
        };
        if name.contains("${") {
            return Err(self.invalid_code(
                ObjectCode::UnresolvedVariable.as_str(),
                self.node.at(&field),
                &field,
                format!(
                    "{name:?} holds a variable no Kustomization's spec.postBuild substitutes here"
                ),
            ));
        }
        let key = ObjectKey::new(namespace, &name)
            .map_err(|e| self.invalid(self.node.at(&field), &field, e))?;
        Ok(Some(key))
    }

    /// A reference that may name another namespace (`path.namespace`).
    fn reference_across(&self, path: &str, own_namespace: &str) -> Read<Option<ObjectKey>> {
        let ns_field = format!("{path}.namespace");
        let namespace = self
            .str(&ns_field)
            .unwrap_or_else(|| own_namespace.to_string());
        validate_namespace(&namespace)
            .map_err(|e| self.invalid(self.node.at(&ns_field), &ns_field, e))?;
        self.reference(path, &namespace)
    }

    /// A Kubernetes label selector at `path`, validated as the API server validates it.
    fn label_selector(&self, path: &str) -> Read<LabelSelector> {
        let labels_path = format!("{path}.matchLabels");
        let expressions_path = format!("{path}.matchExpressions");
        let mut selector = LabelSelector {
            match_labels: self.string_map(&labels_path),
            match_expressions: Vec::new(),
        };
        let items = match self.node.at(&expressions_path) {
            None => return Ok(selector),
            Some(Node::Seq(items, _)) => items,
            Some(other) => {
                return Err(self.invalid(Some(other), &expressions_path, "must be a list"))
            }
        };
        for (i, item) in items.iter().enumerate() {
            let field = format!("{expressions_path}[{i}]");
            let key = item
                .get("key")
                .and_then(Node::as_str)
                .ok_or_else(|| self.invalid(Some(item), &format!("{field}.key"), "is required"))?;
            let operator = match item.get("operator").and_then(Node::as_str) {
                Some("In") => SelectorOperator::In,
                Some("NotIn") => SelectorOperator::NotIn,
                Some("Exists") => SelectorOperator::Exists,
                Some("DoesNotExist") => SelectorOperator::DoesNotExist,
                other => {
                    return Err(self.invalid(
                        item.get("operator").or(Some(item)),
                        &format!("{field}.operator"),
                        format!(
                            "{} is not one of In, NotIn, Exists, DoesNotExist",
                            other.map_or("(none)".to_string(), |o| format!("{o:?}"))
                        ),
                    ))
                }
            };
            let values: Vec<String> = match item.get("values") {
                None => Vec::new(),
                Some(Node::Seq(values, _)) => values
                    .iter()
                    .filter_map(Node::as_str)
                    .map(str::to_string)
                    .collect(),
                Some(other) => {
                    return Err(self.invalid(
                        Some(other),
                        &format!("{field}.values"),
                        "must be a list of strings",
                    ))
                }
            };
            let needs_values = matches!(operator, SelectorOperator::In | SelectorOperator::NotIn);
            if needs_values == values.is_empty() {
                return Err(self.invalid(
                    item.get("values").or(Some(item)),
                    &format!("{field}.values"),
                    if needs_values {
                        "must not be empty for In and NotIn"
                    } else {
                        "must be empty for Exists and DoesNotExist"
                    },
                ));
            }
            selector.match_expressions.push(LabelRequirement {
                key: key.to_string(),
                operator,
                values,
            });
        }
        Ok(selector)
    }

    /// A map of push options as `git push -o` takes them: `key=value`, or `key` where the
    /// value is empty or null (`merge_request.create: ""`).
    fn push_options(&self, path: &str) -> Vec<String> {
        match self.node.at(path) {
            Some(Node::Map(entries, _)) => entries
                .iter()
                .filter_map(|(k, v)| match v {
                    Node::Scalar(..) => Some(match v.as_str() {
                        Some(value) => format!("{k}={value}"),
                        None => k.clone(),
                    }),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn origin(&self, api_version: &str) -> Read<Origin> {
        for field in ["metadata.name", "metadata.namespace"] {
            if let Some(value) = self.str(field).filter(|v| v.contains("${")) {
                return Err(self.invalid_code(
                    ObjectCode::UnresolvedVariable.as_str(),
                    self.node.at(field),
                    field,
                    format!("{value:?} holds a variable no Kustomization's spec.postBuild substitutes here; the object is not used"),
                ));
            }
        }
        let namespace = self
            .str("metadata.namespace")
            .unwrap_or_else(|| "default".into());
        validate_namespace(&namespace).map_err(|e| {
            self.invalid(self.node.at("metadata.namespace"), "metadata.namespace", e)
        })?;
        let name = self.required("metadata.name")?;
        validate_name(&name)
            .map_err(|e| self.invalid(self.node.at("metadata.name"), "metadata.name", e))?;
        Ok(Origin {
            key: ObjectKey::new(&namespace, &name)
                .map_err(|e| self.invalid(None, "metadata", e))?,
            file: self.file.to_path_buf(),
            line: self.node.line(),
            api_version: api_version.to_string(),
        })
    }

    /// `namespace:name` as far as it can be read, for naming a failed object.
    fn loose_key(&self) -> Option<String> {
        let name = self.str("metadata.name")?;
        let namespace = self
            .str("metadata.namespace")
            .unwrap_or_else(|| "default".into());
        Some(crate::error::one_line(&format!("{namespace}:{name}"), 120))
    }
}

impl FluxObjects {
    /// The GitRepository an automation's `sourceRef` names.
    pub fn source_of(&self, automation: &Automation) -> Option<&GitRepositoryObject> {
        let source = automation.source.as_ref()?;
        self.git_repositories
            .iter()
            .find(|g| &g.origin.key == source)
    }

    /// The branch an automation works on, resolved as Flux does:
    /// `spec.git.checkout.ref.branch`, else the `spec.ref.branch` of the GitRepository its
    /// `sourceRef` names.
    pub fn branch_of<'a>(&'a self, automation: &'a Automation) -> Option<&'a str> {
        automation
            .checkout_branch
            .as_deref()
            .or_else(|| self.source_of(automation)?.branch.as_deref())
    }

    /// The one branch every automation that names a branch works on; `None` when none
    /// names one or they disagree (a single clone cannot serve both; `run` then notes the
    /// difference per automation).
    pub fn checkout_branch(&self) -> Option<&str> {
        let mut branches = self.automations.iter().filter_map(|a| self.branch_of(a));
        let first = branches.next()?;
        branches.all(|b| b == first).then_some(first)
    }

    /// What an automation checks out, resolved as Flux does: its own
    /// `spec.git.checkout.ref` when set, else its GitRepository's `spec.ref`; within a ref,
    /// the first set of commit, name, semver, tag and branch.
    pub fn checkout_of(&self, automation: &Automation) -> Option<CheckoutRef> {
        let a = automation;
        pick_ref(
            &a.checkout_commit,
            &a.checkout_name,
            &a.checkout_semver,
            &a.checkout_tag,
            &a.checkout_branch,
        )
        .or_else(|| {
            let g = self.source_of(automation)?;
            pick_ref(&g.commit, &g.name, &g.semver, &g.tag, &g.branch)
        })
    }

    /// The one ref every automation that names one checks out; `None` when none names
    /// one or they disagree.
    pub fn checkout_target(&self) -> Option<CheckoutRef> {
        let mut refs = self.automations.iter().filter_map(|a| self.checkout_of(a));
        let first = refs.next()?;
        refs.all(|r| r == first).then_some(first)
    }

    /// Reads the Flux objects of a separate config file (multi-document YAML), for
    /// repositories that keep the CRDs outside the tree they update. Errors name the file
    /// as given.
    pub fn load_file(file: &Path) -> Result<Self, crate::RunError> {
        let bytes = std::fs::read(file).map_err(|e| crate::RunError::Io {
            path: file.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut objects = FluxObjects::default();
        objects.add_bytes(file, &bytes);
        Ok(objects)
    }

    /// Reads one file's bytes: text that is not UTF-8 is a failure of that file when it
    /// holds Flux objects (a CRD with one bad byte is never skipped silently).
    pub fn add_bytes(&mut self, file: &Path, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.add_text(file, text),
            Err(e) => {
                let line = 1 + bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                self.failures.push(ObjectFailure {
                    kind: "file".into(),
                    object: None,
                    error: ObjectError::at(
                        ObjectCode::InvalidYaml.as_str(),
                        &file.display().to_string(),
                        line,
                        "-",
                        format!(
                            "not UTF-8 text (invalid byte at offset {}); its objects are not read",
                            e.valid_up_to()
                        ),
                    ),
                });
            }
        }
    }

    /// Reads the objects of one file's text; what cannot be read is recorded in
    /// [`failures`](Self::failures).
    pub fn add_text(&mut self, file: &Path, text: &str) {
        let docs = match parse_documents(text) {
            Ok(docs) => docs,
            Err((line, message)) => {
                self.failures.push(ObjectFailure {
                    kind: "file".into(),
                    object: None,
                    error: ObjectError::at(
                        ObjectCode::InvalidYaml.as_str(),
                        &file.display().to_string(),
                        line,
                        "-",
                        format!("YAML does not parse: {message}; its objects are not read"),
                    ),
                });
                return;
            }
        };
        for node in &docs {
            self.add_document(&Doc { file, node });
        }
    }

    /// Reads one parsed document of `file` (the loader substitutes variables and sets
    /// namespaces on the tree first).
    pub fn add_node(&mut self, file: &Path, node: &Node) {
        self.add_document(&Doc { file, node });
    }

    fn add_document(&mut self, doc: &Doc<'_>) {
        let api = doc.str("apiVersion").unwrap_or_default();
        let kind = doc.str("kind").unwrap_or_default();
        let (group, version) = api.split_once('/').unwrap_or(("", api.as_str()));
        let fail = |this: &mut Self, error: ObjectError| {
            this.failures.push(ObjectFailure {
                kind: kind.clone(),
                object: doc.loose_key(),
                error,
            })
        };
        match group {
            "image.toolkit.fluxcd.io"
            | "source.toolkit.fluxcd.io"
            | "kustomize.toolkit.fluxcd.io" => {}
            "" => {
                if matches!(kind.as_str(), "Namespace" | "ConfigMap" | "Secret") {
                    if let Some(plain) = read_plain(doc, &kind) {
                        self.plain.push(plain);
                    }
                }
                return;
            }
            _ => return,
        }
        let known = match group {
            "image.toolkit.fluxcd.io" => IMAGE_KINDS.contains(&kind.as_str()),
            "source.toolkit.fluxcd.io" => kind == "GitRepository",
            _ => kind == "Kustomization",
        };
        if group == "image.toolkit.fluxcd.io" && !known {
            let error = doc.invalid_code(
                ObjectCode::UnknownKind.as_str(),
                doc.node.get("kind"),
                "kind",
                format!(
                    "{kind:?} is not a kind of {group} ({})",
                    IMAGE_KINDS.join(", ")
                ),
            );
            return fail(self, error);
        }
        if !known {
            // HelmRepository, OCIRepository, Bucket...: Flux objects tagsmith has no use for.
            return;
        }
        if !FLUX_API_VERSIONS.contains(&version) {
            let error = doc.invalid_code(
                ObjectCode::UnsupportedApiVersion.as_str(),
                doc.node.get("apiVersion"),
                "apiVersion",
                format!(
                    "{api:?} is not a version tagsmith reads ({})",
                    FLUX_API_VERSIONS.map(|v| format!("{group}/{v}")).join(", ")
                ),
            );
            return fail(self, error);
        }
        let read = match kind.as_str() {
            "ImageRepository" => read_repository(doc, &api).map(|o| self.repositories.push(o)),
            "ImagePolicy" => read_policy(doc, &api).map(|o| self.policies.push(o)),
            "ImageUpdateAutomation" => read_automation(doc, &api).map(|(o, warnings)| {
                self.warnings.extend(warnings);
                self.automations.push(o)
            }),
            "GitRepository" => {
                read_git_repository(doc, &api).map(|o| self.git_repositories.push(o))
            }
            _ => read_kustomization(doc, &api).map(|o| self.kustomizations.push(o)),
        };
        if let Err(error) = read {
            fail(self, error);
        }
    }

    /// The labels of namespace `name`: those of a `Namespace` object in the tree, plus
    /// `kubernetes.io/metadata.name`, which the API server sets on every namespace.
    pub fn namespace_labels(&self, name: &str) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = self
            .plain
            .iter()
            .find(|o| o.kind == "Namespace" && o.name == name)
            .map(|o| o.labels.clone())
            .unwrap_or_default();
        labels.insert("kubernetes.io/metadata.name".into(), name.into());
        labels
    }

    /// Whether a policy in `namespace` may use `repository`: always in the repository's own
    /// namespace; elsewhere only when `spec.accessFrom.namespaceSelectors` selects it, as
    /// Flux checks it.
    pub fn access_allowed(&self, repository: &ImageRepository, namespace: &str) -> bool {
        if repository.origin.namespace() == namespace {
            return true;
        }
        let labels = self.namespace_labels(namespace);
        repository
            .access_from
            .as_ref()
            .is_some_and(|selectors| selectors.iter().any(|s| s.matches(&labels)))
    }
}

fn read_plain(doc: &Doc<'_>, kind: &str) -> Option<PlainObject> {
    let name = doc.str("metadata.name")?;
    let namespace = if kind == "Namespace" {
        String::new()
    } else {
        doc.str("metadata.namespace")
            .unwrap_or_else(|| "default".into())
    };
    let mut data = BTreeMap::new();
    let encrypted = |v: &str| v.starts_with("ENC[");
    for (k, v) in doc.string_map("data") {
        if encrypted(&v) {
            continue;
        }
        if kind == "Secret" {
            use base64::Engine;
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v.trim()) else {
                continue;
            };
            if let Ok(text) = String::from_utf8(bytes) {
                data.insert(k, text);
            }
        } else {
            data.insert(k, v);
        }
    }
    for (k, v) in doc.string_map("stringData") {
        if !encrypted(&v) {
            data.insert(k, v);
        }
    }
    Some(PlainObject {
        kind: kind.into(),
        namespace,
        name,
        labels: doc.string_map("metadata.labels"),
        data,
        file: doc.file.to_path_buf(),
        line: doc.node.line(),
    })
}

fn read_repository(doc: &Doc<'_>, api: &str) -> Read<ImageRepository> {
    let origin = doc.origin(api)?;
    let exclusion_list: Vec<String> = match doc.node.at("spec.exclusionList") {
        Some(Node::Seq(items, _)) => items
            .iter()
            .filter_map(Node::as_str)
            .map(str::to_string)
            .collect(),
        Some(other) => {
            return Err(doc.invalid(
                Some(other),
                "spec.exclusionList",
                "must be a list of regular expressions",
            ))
        }
        None => DEFAULT_EXCLUSION_LIST
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    tagsmith_image_policy_core::Exclusions::new(&exclusion_list).map_err(|e| {
        doc.invalid_code(
            e.code(),
            doc.node.at("spec.exclusionList"),
            "spec.exclusionList",
            e.to_string(),
        )
    })?;
    if let Some(provider) = doc.str("spec.provider").filter(|p| p != "generic") {
        // Cloud workload identity needs a cluster; locally, credentials come from
        // --docker-config / --secrets-dir instead.
        tracing::warn!(
            repository = %origin.key(),
            file = %doc.file.display(),
            "spec.provider {provider:?} is ignored: tagsmith uses --docker-config or --secrets-dir credentials"
        );
    }
    let access_from = match doc.node.at("spec.accessFrom.namespaceSelectors") {
        None => None,
        Some(Node::Seq(items, _)) => Some(
            (0..items.len())
                .map(|i| doc.label_selector(&format!("spec.accessFrom.namespaceSelectors[{i}]")))
                .collect::<Read<Vec<_>>>()?,
        ),
        Some(other) => {
            return Err(doc.invalid(
                Some(other),
                "spec.accessFrom.namespaceSelectors",
                "must be a list of label selectors",
            ))
        }
    };
    let interval = doc.duration("spec.interval", Duration::from_secs(600))?;
    let namespace = origin.namespace().to_string();
    Ok(ImageRepository {
        image: doc.required("spec.image")?,
        interval,
        timeout: tagsmith_registry_scan::flux_scan_timeout(
            interval,
            doc.str("spec.timeout")
                .map(|_| doc.duration("spec.timeout", interval))
                .transpose()?,
        ),
        exclusion_list,
        insecure: doc.bool("spec.insecure")?,
        secret_ref: doc.reference("spec.secretRef", &namespace)?,
        cert_secret_ref: doc.reference("spec.certSecretRef", &namespace)?,
        access_from,
        suspend: doc.flag("spec.suspend"),
        origin,
    })
}

fn read_policy(doc: &Doc<'_>, api: &str) -> Read<ImagePolicyObject> {
    let origin = doc.origin(api)?;
    let repository = doc
        .reference_across("spec.imageRepositoryRef", origin.namespace())?
        .ok_or_else(|| {
            doc.invalid(
                doc.node.at("spec.imageRepositoryRef"),
                "spec.imageRepositoryRef.name",
                "is required",
            )
        })?;
    let order = |path: &str| -> Read<Order> {
        match doc.str(path) {
            None => Ok(Order::Asc),
            Some(o) => o
                .parse()
                .map_err(|e: tagsmith_image_policy_core::PolicyError| {
                    doc.invalid_code(e.code(), doc.node.at(path), path, e.to_string())
                }),
        }
    };
    let kind = if doc.node.at("spec.policy.semver").is_some() {
        PolicyKind::Semver {
            range: doc.required("spec.policy.semver.range")?,
        }
    } else if doc.node.at("spec.policy.alphabetical").is_some() {
        PolicyKind::Alphabetical {
            order: order("spec.policy.alphabetical.order")?,
        }
    } else if doc.node.at("spec.policy.numerical").is_some() {
        PolicyKind::Numerical {
            order: order("spec.policy.numerical.order")?,
        }
    } else {
        return Err(doc.invalid(
            doc.node.at("spec.policy"),
            "spec.policy",
            "needs one of semver, alphabetical, numerical",
        ));
    };
    let filter_tags = doc.node.at("spec.filterTags").map(|_| FilterTags {
        pattern: doc.str("spec.filterTags.pattern"),
        extract: doc.str("spec.filterTags.extract"),
    });
    let spec = PolicySpec {
        kind,
        filter_tags,
        skip_non_numeric: false,
    };
    // Compile now so that a bad range or pattern is reported at its line.
    if let Err(e) = tagsmith_image_policy_core::ImagePolicy::new(&spec) {
        let path = match &e {
            tagsmith_image_policy_core::PolicyError::InvalidRange { .. } => {
                "spec.policy.semver.range"
            }
            tagsmith_image_policy_core::PolicyError::InvalidRegex { .. } => {
                "spec.filterTags.pattern"
            }
            _ => "spec.policy",
        };
        return Err(doc.invalid_code(e.code(), doc.node.at(path), path, e.to_string()));
    }
    let digest_reflection = match doc.str("spec.digestReflectionPolicy").as_deref() {
        None | Some("Never") => DigestReflection::Never,
        Some("IfNotPresent") => DigestReflection::IfNotPresent,
        Some("Always") => DigestReflection::Always,
        Some(other) => {
            return Err(doc.invalid(
                doc.node.at("spec.digestReflectionPolicy"),
                "spec.digestReflectionPolicy",
                format!("{other:?} is not Never, IfNotPresent or Always"),
            ))
        }
    };
    Ok(ImagePolicyObject {
        repository,
        spec,
        digest_reflection,
        labels: doc.string_map("metadata.labels"),
        suspend: doc.flag("spec.suspend"),
        origin,
    })
}

/// Checks `spec.update.path` as repository content: relative, and never `..` (symlinks
/// are resolved against the checkout when the automation runs).
fn update_path(doc: &Doc<'_>) -> Read<String> {
    let update_path = doc.str("spec.update.path").unwrap_or_else(|| ".".into());
    let node = doc.node.at("spec.update.path");
    let path = Path::new(&update_path);
    if path.is_absolute() || update_path.starts_with('\\') {
        return Err(doc.invalid(
            node,
            "spec.update.path",
            "must be relative to the repository root, not absolute",
        ));
    }
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(doc.invalid(
            node,
            "spec.update.path",
            "must stay inside the repository (no '..')",
        ));
    }
    Ok(update_path)
}

fn read_automation(doc: &Doc<'_>, api: &str) -> Read<(Automation, Vec<String>)> {
    let origin = doc.origin(api)?;
    let mut warnings = Vec::new();
    let strategy = doc
        .str("spec.update.strategy")
        .unwrap_or_else(|| "Setters".into());
    if !strategy.eq_ignore_ascii_case("setters") {
        return Err(doc.invalid(
            doc.node.at("spec.update.strategy"),
            "spec.update.strategy",
            format!("{strategy:?}: only Setters is supported"),
        ));
    }
    let source = doc.reference_across("spec.sourceRef", origin.namespace())?;
    let update_path = update_path(doc)?;
    let checkout_semver = doc.semver_range("spec.git.checkout.ref.semver")?;
    for detached in ["tag", "commit", "semver", "name"] {
        let field = format!("spec.git.checkout.ref.{detached}");
        if doc.str(&field).is_some()
            && doc.str("spec.git.push.branch").is_none()
            && doc.str("spec.git.push.refspec").is_none()
        {
            return Err(doc.invalid(
                doc.node.at(&field),
                &field,
                format!("checking out a {} leaves no branch to push to: set spec.git.push.branch (as Flux requires)", match detached { "semver" => "semver tag", "name" => "ref by name", other => other }),
            ));
        }
    }
    let template_field = "spec.git.commit.messageTemplate";
    if let Some(template) = doc.str(template_field) {
        let node = doc.node.at(template_field);
        let v1 = api.ends_with("/v1");
        if tagsmith_git_commit::uses_updated(&template) {
            if v1 {
                let removed = tagsmith_git_commit::GitError::Template {
                    message: String::new(),
                };
                return Err(doc.invalid_code(
                    removed.code(),
                    node,
                    template_field,
                    "uses .Updated, which image.toolkit.fluxcd.io/v1 (Flux 2.7) removed: use .Changed (e.g. {{ range .Changed.Changes }}{{ .NewValue }}{{ end }})",
                ));
            }
            warnings.push(format!(
                "{}:{}: {template_field}: uses .Updated, rendered for {api} as Flux up to 2.6 did; Flux 2.7 (v1) removed it: move to .Changed",
                doc.file.display(),
                node.map_or(origin.line, Node::line),
            ));
        }
        let parsed = if v1 {
            tagsmith_git_commit::MessageTemplate::parse(&template)
        } else {
            tagsmith_git_commit::MessageTemplate::parse_legacy(&template)
        };
        parsed.map_err(|e| doc.invalid_code(e.code(), node, template_field, e.to_string()))?;
    }
    let namespace = origin.namespace().to_string();
    let automation = Automation {
        interval: doc.duration("spec.interval", Duration::from_secs(600))?,
        source,
        checkout_tag: doc.str("spec.git.checkout.ref.tag"),
        checkout_commit: doc.str("spec.git.checkout.ref.commit"),
        checkout_semver,
        checkout_name: doc.str("spec.git.checkout.ref.name"),
        checkout_branch: doc
            .str("spec.git.checkout.ref.branch")
            .or_else(|| doc.str("spec.git.checkout.branch")),
        author_name: doc.required("spec.git.commit.author.name")?,
        author_email: doc.required("spec.git.commit.author.email")?,
        message_template: doc.str(template_field),
        message_template_values: doc.string_map("spec.git.commit.messageTemplateValues"),
        signing_key_secret: doc.reference("spec.git.commit.signingKey.secretRef", &namespace)?,
        push_branch: doc.str("spec.git.push.branch"),
        push_refspec: doc.str("spec.git.push.refspec"),
        push_options: doc.push_options("spec.git.push.options"),
        update_path,
        policy_selector: doc.label_selector("spec.policySelector")?,
        suspend: doc.flag("spec.suspend"),
        origin,
    };
    Ok((automation, warnings))
}

fn read_git_repository(doc: &Doc<'_>, api: &str) -> Read<GitRepositoryObject> {
    let origin = doc.origin(api)?;
    let namespace = origin.namespace().to_string();
    Ok(GitRepositoryObject {
        url: doc.required("spec.url")?,
        branch: doc.str("spec.ref.branch"),
        tag: doc.str("spec.ref.tag"),
        commit: doc.str("spec.ref.commit"),
        semver: doc.semver_range("spec.ref.semver")?,
        name: doc.str("spec.ref.name"),
        secret_ref: doc.reference("spec.secretRef", &namespace)?,
        origin,
    })
}

fn read_kustomization(doc: &Doc<'_>, api: &str) -> Read<KustomizationObject> {
    let origin = doc.origin(api)?;
    let namespace = origin.namespace().to_string();
    let source = doc
        .reference_across("spec.sourceRef", &namespace)?
        .map(|key| {
            let kind = doc
                .str("spec.sourceRef.kind")
                .unwrap_or_else(|| "GitRepository".into());
            (kind, key)
        });
    let mut substitute_from = Vec::new();
    if let Some(Node::Seq(items, _)) = doc.node.at("spec.postBuild.substituteFrom") {
        for (i, item) in items.iter().enumerate() {
            let field = format!("spec.postBuild.substituteFrom[{i}]");
            let kind = item
                .get("kind")
                .and_then(Node::as_str)
                .unwrap_or("ConfigMap")
                .to_string();
            let name = item
                .get("name")
                .and_then(Node::as_str)
                .ok_or_else(|| doc.invalid(Some(item), &format!("{field}.name"), "is required"))?;
            let key = ObjectKey::new(&namespace, name)
                .map_err(|e| doc.invalid(Some(item), &format!("{field}.name"), e))?;
            let optional = item
                .get("optional")
                .and_then(Node::as_str)
                .is_some_and(|v| v == "true");
            substitute_from.push((kind, key, optional));
        }
    }
    Ok(KustomizationObject {
        path: doc.str("spec.path").unwrap_or_else(|| "./".into()),
        source,
        substitute: doc.string_map("spec.postBuild.substitute"),
        substitute_from,
        suspend: doc.flag("spec.suspend"),
        origin,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const POLICY: &str = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: RANGE\n";

    fn read(file: &str, text: &str) -> FluxObjects {
        let mut objects = FluxObjects::default();
        objects.add_text(Path::new(file), text);
        objects
    }

    fn only_failure(objects: &FluxObjects) -> &ObjectError {
        assert_eq!(objects.failures.len(), 1, "{:#?}", objects.failures);
        &objects.failures[0].error
    }

    #[test]
    fn reads_every_kind() {
        let text = format!(
            "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  image: reg.example.com/app\n  interval: 5m30s\n---\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vars\ndata: {{cluster: prod}}\n",
            POLICY.replace("RANGE", "'>=1.0.0 <2.0.0'")
        );
        let objects = read("flux.yaml", &text);
        assert!(objects.failures.is_empty(), "{:#?}", objects.failures);
        assert_eq!(objects.repositories[0].interval, Duration::from_secs(330));
        // spec.timeout defaults to the interval.
        assert_eq!(objects.repositories[0].timeout, Duration::from_secs(330));
        assert_eq!(objects.repositories[0].exclusion_list, ["^.*\\.sig$"]);
        assert_eq!(
            objects.policies[0].repository.to_string(),
            "flux-system:app"
        );
        assert_eq!(objects.plain[0].data["cluster"], "prod");
    }

    #[test]
    fn push_options_as_git_push_takes_them() {
        let objects = read(
            "a.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: a, namespace: ns}\nspec:\n  git:\n    commit: {author: {name: bot, email: bot@example.com}}\n    push:\n      branch: dev\n      options:\n        merge_request.create: \"\"\n        merge_request.target: release\n  update: {path: ./}\n",
        );
        assert_eq!(
            objects.automations[0].push_options,
            ["merge_request.create", "merge_request.target=release"]
        );
    }

    #[test]
    fn an_invalid_object_fails_alone_naming_file_line_and_field() {
        let text = format!(
            "{}---\n{}",
            POLICY.replace("RANGE", "'>= 1.0 <'"),
            POLICY
                .replace("name: app\n  namespace", "name: good\n  namespace")
                .replace("RANGE", "'1.x'")
        );
        let objects = read("clusters/policy.yaml", &text);
        let error = only_failure(&objects);
        assert!(
            error
                .message
                .starts_with("clusters/policy.yaml:11: spec.policy.semver.range:"),
            "{error:?}"
        );
        assert_eq!(error.code, "invalid_range");
        assert_eq!(
            objects.failures[0].object.as_deref(),
            Some("flux-system:app")
        );
        // The other policy of the same file is read.
        assert_eq!(objects.policies.len(), 1);
        assert_eq!(objects.policies[0].origin.name(), "good");
        let objects = read(
            "p.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: x\nspec:\n  interval: 1m\n",
        );
        assert!(only_failure(&objects)
            .message
            .starts_with("p.yaml:1: spec.image: is required"));
    }

    #[test]
    fn a_file_that_does_not_parse_is_a_failure_of_that_file() {
        let objects = read(
            "b.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: [\n",
        );
        let error = only_failure(&objects);
        assert_eq!(error.code, "invalid_yaml");
        assert!(error.message.starts_with("b.yaml:"), "{error:?}");
    }

    #[test]
    fn one_invalid_utf8_byte_is_reported_not_skipped() {
        let mut objects = FluxObjects::default();
        let mut bytes = POLICY.replace("RANGE", "'1.x'").into_bytes();
        bytes.extend_from_slice(b"# \xff\n");
        objects.add_bytes(Path::new("bad.yaml"), &bytes);
        let error = only_failure(&objects);
        assert_eq!(error.code, "invalid_yaml");
        assert!(error.message.contains("not UTF-8"), "{error:?}");
        assert_eq!(error.line, Some(12));
    }

    #[test]
    fn names_kubernetes_would_refuse_never_become_objects() {
        let hostile = [
            ("name: /../victimhome/.docker/config", "metadata.name"),
            ("name: app\n  namespace: ../etc", "metadata.namespace"),
        ];
        for (metadata, field) in hostile {
            let text = format!(
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  {metadata}\nspec:\n  image: reg/app\n"
            );
            let objects = read("r.yaml", &text);
            assert!(objects.repositories.is_empty());
            let error = only_failure(&objects);
            assert!(error.message.contains(field), "{error:?}");
        }
        let objects = read(
            "r.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: team-a}\nspec:\n  image: reg/app\n  secretRef: {name: ../flux-system/regcred}\n",
        );
        assert!(only_failure(&objects)
            .message
            .contains("spec.secretRef.name"));
    }

    #[test]
    fn unknown_api_versions_and_misspelt_kinds_are_failures_not_silence() {
        let objects = read(
            "v9.yaml",
            &POLICY
                .replace("image.toolkit.fluxcd.io/v1", "image.toolkit.fluxcd.io/v9")
                .replace("RANGE", "'1.x'"),
        );
        assert_eq!(only_failure(&objects).code, "unsupported_api_version");
        let objects = read(
            "typo.yaml",
            &POLICY
                .replace("kind: ImagePolicy", "kind: ImagePolicyy")
                .replace("RANGE", "'1.x'"),
        );
        let error = only_failure(&objects);
        assert_eq!(error.code, "unknown_kind");
        assert!(error.message.contains("ImagePolicyy"), "{error:?}");
        // Other Flux kinds tagsmith has no use for are not errors.
        let objects = read(
            "helm.yaml",
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: h}\nspec: {url: https://charts.example.com}\n",
        );
        assert!(objects.failures.is_empty());
    }

    #[test]
    fn anchors_and_merge_keys_in_objects_are_read() {
        let objects = read(
            "anchors.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: ns}\nspec: &spec\n  image: reg/app\n  interval: 5m\n---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app2, namespace: ns}\nspec:\n  <<: {image: reg/app2, interval: 1m}\n",
        );
        assert!(objects.failures.is_empty(), "{:#?}", objects.failures);
        assert_eq!(objects.repositories[1].image, "reg/app2");
    }

    #[test]
    fn update_paths_outside_the_repository_are_refused() {
        for (path, reason) in [("/etc", "absolute"), ("apps/../../x", "'..'")] {
            let objects = read(
                "a.yaml",
                &format!("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: a, namespace: ns}}\nspec:\n  git: {{commit: {{author: {{name: bot, email: bot@example.com}}}}}}\n  update: {{path: {path}}}\n"),
            );
            let error = only_failure(&objects);
            assert!(error.message.contains("spec.update.path"), "{error:?}");
            assert!(error.message.contains(reason), "{error:?}");
        }
    }

    #[test]
    fn updated_renders_for_v1beta_and_fails_alone_for_v1() {
        let automation = |api: &str| {
            format!("apiVersion: image.toolkit.fluxcd.io/{api}\nkind: ImageUpdateAutomation\nmetadata: {{name: a, namespace: ns}}\nspec:\n  git:\n    commit:\n      author: {{name: bot, email: bot@example.com}}\n      messageTemplate: |\n        {{{{ range .Updated.Images }}}}- {{{{.}}}}{{{{ end }}}}\n  update: {{path: ./}}\n")
        };
        let objects = read("a.yaml", &automation("v1beta1"));
        assert!(objects.failures.is_empty());
        assert!(objects.automations[0].renders_updated());
        assert!(
            objects.warnings[0].contains(".Changed"),
            "{:?}",
            objects.warnings
        );
        let objects = read("a.yaml", &automation("v1"));
        let error = only_failure(&objects);
        assert_eq!(error.code, "template");
        // The line of the template's text (a block scalar's text starts after its key).
        assert!(
            error
                .message
                .contains("a.yaml:9: spec.git.commit.messageTemplate"),
            "{error:?}"
        );
    }

    #[test]
    fn access_from_selects_namespaces_by_label() {
        let objects = read(
            "r.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: flux-system}\nspec:\n  image: reg/app\n  accessFrom:\n    namespaceSelectors:\n      - matchLabels: {tenant: shop}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team-a, labels: {tenant: shop}}\n",
        );
        let repo = &objects.repositories[0];
        assert!(objects.access_allowed(repo, "flux-system"));
        assert!(objects.access_allowed(repo, "team-a"));
        assert!(!objects.access_allowed(repo, "team-b"));
        let closed = read(
            "r.yaml",
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app, namespace: flux-system}\nspec: {image: reg/app}\n",
        );
        assert!(!closed.access_allowed(&closed.repositories[0], "team-a"));
    }

    #[test]
    fn checkout_refs_follow_fluxs_precedence() {
        let automation = |git_ref: &str| {
            format!("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: a, namespace: ns}}\nspec:\n  sourceRef: {{kind: GitRepository, name: repo}}\n  git:\n    checkout: {{ref: {{{git_ref}}}}}\n    commit: {{author: {{name: bot, email: bot@example.com}}}}\n    push: {{branch: auto}}\n  update: {{path: ./}}\n")
        };
        let source = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo, namespace: ns}\nspec:\n  url: https://example.com/repo.git\n  ref: {branch: main, tag: v1, semver: '^1', name: refs/pull/1/head}\n";
        let target = |git_ref: &str| {
            let mut objects = read("a.yaml", &automation(git_ref));
            objects.add_text(Path::new("s.yaml"), source);
            assert!(objects.failures.is_empty(), "{:#?}", objects.failures);
            objects.checkout_target()
        };
        let all = "branch: main, tag: v1, semver: '^1', name: refs/pull/1/head, commit: abc";
        assert_eq!(target(all), Some(CheckoutRef::Commit("abc".into())));
        let no_commit = "branch: main, tag: v1, semver: '^1', name: refs/pull/1/head";
        assert_eq!(
            target(no_commit),
            Some(CheckoutRef::Name("refs/pull/1/head".into()))
        );
        assert_eq!(
            target("branch: main, tag: v1, semver: '^1'"),
            Some(CheckoutRef::SemVer("^1".into()))
        );
        assert_eq!(
            target("branch: main, tag: v1"),
            Some(CheckoutRef::Tag("v1".into()))
        );
        assert_eq!(
            target("branch: dev"),
            Some(CheckoutRef::Branch("dev".into()))
        );
        // No ref of its own: the GitRepository's, by the same precedence.
        assert_eq!(
            target(""),
            Some(CheckoutRef::Name("refs/pull/1/head".into()))
        );
    }

    #[test]
    fn durations_parse_without_overflowing() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("99999999999999999999h"), None);
        assert_eq!(parse_duration("1e400s"), None);
    }
}
