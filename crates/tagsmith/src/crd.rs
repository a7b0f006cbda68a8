//! Flux's own CRDs, read from YAML: `ImageRepository`, `ImagePolicy`,
//! `ImageUpdateAutomation` (`image.toolkit.fluxcd.io/v1beta1`, `v1beta2`, `v1`) and
//! `GitRepository` (`source.toolkit.fluxcd.io`). Where the versions differ, both spellings
//! are read (v1beta1's `spec.update.setters` strategy name, `spec.git.checkout.branch`).

use crate::yaml::{parse_documents, Node};
use crate::RunError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tagsmith_git_commit::CheckoutRef;
use tagsmith_image_policy_core::{
    FilterTags, Order, PolicyKind, PolicySpec, DEFAULT_EXCLUSION_LIST,
};

/// `namespace/name` of an object, with where it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `metadata.namespace` (`default` when absent, as kubectl applies it).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// File the object was read from.
    pub file: PathBuf,
    /// Line its document starts on.
    pub line: usize,
}

impl Origin {
    /// `namespace:name`, the form setter markers use.
    pub fn key(&self) -> String {
        format!("{}:{}", self.namespace, self.name)
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
    /// `spec.exclusionList` (Flux's default when absent).
    pub exclusion_list: Vec<String>,
    /// `spec.insecure`.
    pub insecure: bool,
    /// `spec.secretRef.name`: a Docker config secret.
    pub secret_ref: Option<String>,
    /// `spec.certSecretRef.name`: CA certificates.
    pub cert_secret_ref: Option<String>,
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
    /// `spec.imageRepositoryRef` as `namespace:name`.
    pub repository: String,
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
    /// `spec.sourceRef` as `namespace:name` of a GitRepository.
    pub source: Option<String>,
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
    /// `spec.git.commit.signingKey.secretRef.name`.
    pub signing_key_secret: Option<String>,
    /// `spec.git.push.branch`.
    pub push_branch: Option<String>,
    /// `spec.git.push.refspec`.
    pub push_refspec: Option<String>,
    /// `spec.git.push.options`, as `git push -o` takes them: `key=value`, or `key` for an
    /// empty value (GitLab's `merge_request.create: ""`).
    pub push_options: Vec<String>,
    /// `spec.update.path`, relative to the repository root.
    pub update_path: String,
    /// `spec.policySelector` (`matchLabels` and `matchExpressions`).
    pub policy_selector: LabelSelector,
    /// `spec.suspend`: Flux leaves a suspended automation alone; so does `run`.
    pub suspend: bool,
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
    /// `spec.secretRef.name`.
    pub secret_ref: Option<String>,
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
}

/// Parses a Flux/Kubernetes duration (`1m`, `5m30s`, `1h`, `500ms`).
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
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(seconds);
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

impl Doc<'_> {
    fn invalid(&self, node: Option<&Node>, field: &str, message: impl Into<String>) -> RunError {
        RunError::InvalidObject {
            file: self.file.to_path_buf(),
            line: node.map_or(self.node.line(), Node::line),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn str(&self, path: &str) -> Option<String> {
        self.node
            .at(path)
            .and_then(Node::as_str)
            .map(str::to_string)
    }

    /// A semver range field, checked now so that a bad range is reported with its line
    /// before anything is cloned.
    fn semver_range(&self, path: &str) -> Result<Option<String>, RunError> {
        let Some(range) = self.str(path) else {
            return Ok(None);
        };
        tagsmith_image_policy_core::Constraints::parse(&range)
            .map_err(|e| self.invalid(self.node.at(path), path, e.to_string()))?;
        Ok(Some(range))
    }

    fn required(&self, path: &str) -> Result<String, RunError> {
        self.str(path)
            .ok_or_else(|| self.invalid(self.node.at(path), path, "is required"))
    }

    fn duration(&self, path: &str, default: Duration) -> Result<Duration, RunError> {
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

    fn bool(&self, path: &str) -> Result<bool, RunError> {
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

    /// A Kubernetes label selector at `path`, validated as the API server validates it.
    fn label_selector(&self, path: &str) -> Result<LabelSelector, RunError> {
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

    fn origin(&self) -> Result<Origin, RunError> {
        Ok(Origin {
            namespace: self
                .str("metadata.namespace")
                .unwrap_or_else(|| "default".into()),
            name: self.required("metadata.name")?,
            file: self.file.to_path_buf(),
            line: self.node.line(),
        })
    }
}

impl FluxObjects {
    /// The branch an automation works on, resolved as Flux does:
    /// `spec.git.checkout.ref.branch`, else the `spec.ref.branch` of the GitRepository its
    /// `sourceRef` names.
    pub fn branch_of<'a>(&'a self, automation: &'a Automation) -> Option<&'a str> {
        automation.checkout_branch.as_deref().or_else(|| {
            let source = automation.source.as_deref()?;
            self.git_repositories
                .iter()
                .find(|g| g.origin.key() == source)
                .and_then(|g| g.branch.as_deref())
        })
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
            let source = automation.source.as_deref()?;
            let g = self
                .git_repositories
                .iter()
                .find(|g| g.origin.key() == source)?;
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

    /// Reads every `.yaml`/`.yml` file under `root` (skipping `.git`). Files that are not
    /// YAML, or YAML without Flux objects, are ignored; a Flux object that is invalid is an
    /// error naming `file:line` and the field.
    pub fn load_tree(root: &Path) -> Result<Self, RunError> {
        let mut files: Vec<PathBuf> = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .hidden(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
            .map(|e| e.into_path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut objects = FluxObjects::default();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            if !text.contains("toolkit.fluxcd.io") {
                continue;
            }
            let display = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
            objects.add_text(&display, &text)?;
        }
        Ok(objects)
    }

    /// Reads the Flux objects of a separate config file (multi-document YAML), for
    /// repositories that keep the CRDs outside the tree they update. Errors name the file
    /// as given.
    pub fn load_file(file: &Path) -> Result<Self, RunError> {
        let text = std::fs::read_to_string(file).map_err(|e| RunError::Io {
            path: file.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut objects = FluxObjects::default();
        objects.add_text(file, &text)?;
        Ok(objects)
    }

    /// Reads the Flux objects of one file's text.
    pub fn add_text(&mut self, file: &Path, text: &str) -> Result<(), RunError> {
        let docs = parse_documents(text).map_err(|(line, message)| RunError::InvalidObject {
            file: file.to_path_buf(),
            line,
            field: "-".into(),
            message: format!("YAML does not parse: {message}"),
        })?;
        for node in &docs {
            let doc = Doc { file, node };
            let api = doc.str("apiVersion").unwrap_or_default();
            let kind = doc.str("kind").unwrap_or_default();
            let group = api.split('/').next().unwrap_or_default();
            match (group, kind.as_str()) {
                ("image.toolkit.fluxcd.io", "ImageRepository") => {
                    self.repositories.push(read_repository(&doc)?)
                }
                ("image.toolkit.fluxcd.io", "ImagePolicy") => {
                    self.policies.push(read_policy(&doc)?)
                }
                ("image.toolkit.fluxcd.io", "ImageUpdateAutomation") => {
                    self.automations.push(read_automation(&doc)?)
                }
                ("source.toolkit.fluxcd.io", "GitRepository") => {
                    self.git_repositories.push(GitRepositoryObject {
                        origin: doc.origin()?,
                        url: doc.required("spec.url")?,
                        branch: doc.str("spec.ref.branch"),
                        tag: doc.str("spec.ref.tag"),
                        commit: doc.str("spec.ref.commit"),
                        semver: doc.semver_range("spec.ref.semver")?,
                        name: doc.str("spec.ref.name"),
                        secret_ref: doc.str("spec.secretRef.name"),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks references between objects: every policy's repository exists.
    pub fn validate(&self) -> Result<(), RunError> {
        for p in &self.policies {
            if !self
                .repositories
                .iter()
                .any(|r| r.origin.key() == p.repository)
            {
                return Err(RunError::InvalidObject {
                    file: p.origin.file.clone(),
                    line: p.origin.line,
                    field: "spec.imageRepositoryRef".into(),
                    message: format!(
                        "ImageRepository {} is not defined in the tree",
                        p.repository
                    ),
                });
            }
        }
        Ok(())
    }
}

fn read_repository(doc: &Doc<'_>) -> Result<ImageRepository, RunError> {
    let origin = doc.origin()?;
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
        doc.invalid(
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
    Ok(ImageRepository {
        image: doc.required("spec.image")?,
        interval: doc.duration("spec.interval", Duration::from_secs(600))?,
        exclusion_list,
        insecure: doc.bool("spec.insecure")?,
        secret_ref: doc.str("spec.secretRef.name"),
        cert_secret_ref: doc.str("spec.certSecretRef.name"),
        suspend: doc.flag("spec.suspend"),
        origin,
    })
}

fn read_policy(doc: &Doc<'_>) -> Result<ImagePolicyObject, RunError> {
    let origin = doc.origin()?;
    let repo_name = doc.required("spec.imageRepositoryRef.name")?;
    let repo_ns = doc
        .str("spec.imageRepositoryRef.namespace")
        .unwrap_or_else(|| origin.namespace.clone());
    let order = |path: &str| -> Result<Order, RunError> {
        match doc.str(path) {
            None => Ok(Order::Asc),
            Some(o) => o
                .parse()
                .map_err(|e: tagsmith_image_policy_core::PolicyError| {
                    doc.invalid(doc.node.at(path), path, e.to_string())
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
        return Err(doc.invalid(doc.node.at(path), path, e.to_string()));
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
        repository: format!("{repo_ns}:{repo_name}"),
        spec,
        digest_reflection,
        labels: doc.string_map("metadata.labels"),
        suspend: doc.flag("spec.suspend"),
        origin,
    })
}

fn read_automation(doc: &Doc<'_>) -> Result<Automation, RunError> {
    let origin = doc.origin()?;
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
    let source = doc.str("spec.sourceRef.name").map(|name| {
        let ns = doc
            .str("spec.sourceRef.namespace")
            .unwrap_or_else(|| origin.namespace.clone());
        format!("{ns}:{name}")
    });
    let update_path = doc.str("spec.update.path").unwrap_or_else(|| ".".into());
    if Path::new(&update_path)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(doc.invalid(
            doc.node.at("spec.update.path"),
            "spec.update.path",
            "must stay inside the repository",
        ));
    }
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
    if let Some(template) = doc.str("spec.git.commit.messageTemplate") {
        tagsmith_git_commit::MessageTemplate::parse(&template).map_err(|e| {
            doc.invalid(
                doc.node.at("spec.git.commit.messageTemplate"),
                "spec.git.commit.messageTemplate",
                e.to_string(),
            )
        })?;
    }
    Ok(Automation {
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
        message_template: doc.str("spec.git.commit.messageTemplate"),
        message_template_values: doc.string_map("spec.git.commit.messageTemplateValues"),
        signing_key_secret: doc.str("spec.git.commit.signingKey.secretRef.name"),
        push_branch: doc.str("spec.git.push.branch"),
        push_refspec: doc.str("spec.git.push.refspec"),
        push_options: doc.push_options("spec.git.push.options"),
        update_path,
        policy_selector: doc.label_selector("spec.policySelector")?,
        suspend: doc.flag("spec.suspend"),
        origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: RANGE\n";

    #[test]
    fn reads_every_kind() {
        let mut objects = FluxObjects::default();
        let text = format!(
            "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: flux-system\nspec:\n  image: reg.example.com/app\n  interval: 5m30s\n---\n{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ignored\n",
            POLICY.replace("RANGE", "'>=1.0.0 <2.0.0'")
        );
        objects.add_text(Path::new("flux.yaml"), &text).unwrap();
        assert_eq!(objects.repositories[0].interval, Duration::from_secs(330));
        assert_eq!(objects.repositories[0].exclusion_list, ["^.*\\.sig$"]);
        assert_eq!(objects.policies[0].repository, "flux-system:app");
        objects.validate().unwrap();
    }

    #[test]
    fn push_options_as_git_push_takes_them() {
        let mut objects = FluxObjects::default();
        objects
            .add_text(
                Path::new("a.yaml"),
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {name: a, namespace: ns}\nspec:\n  git:\n    commit: {author: {name: bot, email: bot@example.com}}\n    push:\n      branch: dev\n      options:\n        merge_request.create: \"\"\n        merge_request.target: release\n  update: {path: ./}\n",
            )
            .unwrap();
        assert_eq!(
            objects.automations[0].push_options,
            ["merge_request.create", "merge_request.target=release"]
        );
    }

    #[test]
    fn invalid_objects_name_file_line_and_field() {
        let mut objects = FluxObjects::default();
        let err = objects
            .add_text(
                Path::new("clusters/policy.yaml"),
                &POLICY.replace("RANGE", "'>= 1.0 <'"),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("clusters/policy.yaml:11: spec.policy.semver.range:"),
            "{text}"
        );
        assert_eq!(err.code(), "invalid_object");
        let err = objects
            .add_text(Path::new("p.yaml"), "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: x\nspec:\n  interval: 1m\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("p.yaml:1: spec.image: is required"),
            "{err}"
        );
        let err = objects
            .add_text(
                Path::new("b.yaml"),
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: [\n",
            )
            .unwrap_err();
        assert!(err.to_string().contains("b.yaml:"), "{err}");
    }

    #[test]
    fn checkout_refs_follow_fluxs_precedence() {
        let automation = |git_ref: &str| {
            format!("apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: a, namespace: ns}}\nspec:\n  sourceRef: {{kind: GitRepository, name: repo}}\n  git:\n    checkout: {{ref: {{{git_ref}}}}}\n    commit: {{author: {{name: bot, email: bot@example.com}}}}\n    push: {{branch: auto}}\n  update: {{path: ./}}\n")
        };
        let source = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: repo, namespace: ns}\nspec:\n  url: https://example.com/repo.git\n  ref: {branch: main, tag: v1, semver: '^1', name: refs/pull/1/head}\n";
        let target = |git_ref: &str| {
            let mut objects = FluxObjects::default();
            objects
                .add_text(Path::new("a.yaml"), &automation(git_ref))
                .expect("automation");
            objects
                .add_text(Path::new("s.yaml"), source)
                .expect("source");
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
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5x"), None);
    }
}
