//! Stage 2, select: every ImagePolicy's latest image, from its repository's scan, as
//! image-reflector-controller chooses it. A policy fails alone (a missing or unreadable
//! repository, a namespace its `accessFrom` does not allow, no tag in range).

use super::report::PolicyReport;
use super::scan::Scans;
use crate::crd::{DigestReflection, FluxObjects, ImagePolicyObject};
use crate::error::{ObjectCode, ObjectError};
use crate::names::ObjectKey;
use std::collections::BTreeMap;
use tagsmith_image_policy_core::ImagePolicy;

/// One policy's outcome.
pub struct PolicySelection {
    /// What the report says.
    pub report: PolicyReport,
    /// The reference `ns:name` markers get (`image:tag`, or `image:tag@digest`).
    pub latest_image: Option<String>,
    /// The policy's labels (automations select policies by them).
    pub labels: BTreeMap<String, String>,
}

/// Stage 2's value: every policy's outcome, by `namespace:name`.
#[derive(Default)]
pub struct Selections {
    by_key: BTreeMap<ObjectKey, PolicySelection>,
}

impl Selections {
    /// The policies with a latest image, in `namespace:name` order.
    pub fn chosen(&self) -> impl Iterator<Item = (&ObjectKey, &PolicySelection, &str)> {
        self.by_key
            .iter()
            .filter_map(|(k, s)| s.latest_image.as_deref().map(|image| (k, s, image)))
    }

    /// Every policy's outcome, in `namespace:name` order.
    pub fn all(&self) -> impl Iterator<Item = (&ObjectKey, &PolicySelection)> {
        self.by_key.iter()
    }

    /// One policy's outcome.
    pub fn get(&self, key: &ObjectKey) -> Option<&PolicySelection> {
        self.by_key.get(key)
    }

    /// The reports, in `namespace:name` order.
    pub fn reports(&self) -> Vec<PolicyReport> {
        self.by_key.values().map(|s| s.report.clone()).collect()
    }

    /// Adds one policy's outcome (a controller builds the selections an automation sees
    /// from the policies' `status.latestRef`).
    pub fn insert(&mut self, key: ObjectKey, selection: PolicySelection) {
        self.by_key.insert(key, selection);
    }
}

/// Why `policy` cannot use its repository's scan, or the scan.
fn repository_scan<'a>(
    objects: &FluxObjects,
    scans: &'a Scans,
    policy: &ImagePolicyObject,
) -> Result<&'a super::scan::RepositoryScan, ObjectError> {
    let field = "spec.imageRepositoryRef";
    let key = &policy.repository;
    let Some(repository) = objects.repositories.iter().find(|r| &r.origin.key == key) else {
        let unreadable = objects
            .failures
            .iter()
            .find(|f| f.kind == "ImageRepository" && f.object.as_deref() == Some(&key.to_string()));
        return Err(match unreadable {
            Some(f) => policy.origin.error(
                ObjectCode::DependencyFailed.as_str(),
                field,
                format!(
                    "ImageRepository {key} could not be read: {}",
                    f.error.message
                ),
            ),
            None => policy.origin.error(
                ObjectCode::MissingReference.as_str(),
                field,
                format!("ImageRepository {key} is not among the objects read"),
            ),
        });
    };
    if !objects.access_allowed(repository, policy.origin.namespace()) {
        return Err(policy.origin.error(
            ObjectCode::AccessDenied.as_str(),
            field,
            format!(
                "ImageRepository {key} does not allow policies in namespace {} (its spec.accessFrom.namespaceSelectors select no such namespace)",
                policy.origin.namespace()
            ),
        ));
    }
    let scan = scans
        .get(key)
        .filter(|s| s.result.is_some())
        .ok_or_else(|| {
            let why = scans
                .get(key)
                .and_then(|s| s.report.error.as_ref())
                .map_or_else(|| "no scan".to_string(), |e| e.message.clone());
            policy.origin.error(
                ObjectCode::DependencyFailed.as_str(),
                field,
                format!("ImageRepository {key} has no tags to choose from: {why}"),
            )
        })?;
    Ok(scan)
}

/// Stage 2 for one policy (the controller calls this per ImagePolicy).
pub async fn select_policy(
    objects: &FluxObjects,
    scans: &Scans,
    policy: &ImagePolicyObject,
) -> PolicySelection {
    let mut report = PolicyReport {
        policy: policy.origin.key(),
        cluster: None,
        image: String::new(),
        latest_tag: None,
        latest_image: None,
        stale: false,
        suspended: false,
        explanation: None,
        error: None,
    };
    let done = |mut report: PolicyReport, outcome: Result<String, ObjectError>| {
        let latest_image = match outcome {
            Ok(image) => {
                report.latest_image = Some(image.clone());
                Some(image)
            }
            Err(e) => {
                report.error = Some(e);
                None
            }
        };
        PolicySelection {
            report,
            latest_image,
            labels: policy.labels.clone(),
        }
    };
    if policy.suspend {
        // Flux keeps a suspended policy's last latest image in its status, which a run
        // outside the cluster does not have: it offers no value, and its markers stay.
        report.suspended = true;
        return PolicySelection {
            report,
            latest_image: None,
            labels: policy.labels.clone(),
        };
    }
    let scan = match repository_scan(objects, scans, policy) {
        Ok(scan) => scan,
        Err(e) => return done(report, Err(e)),
    };
    let (Some(result), Some(source)) = (&scan.result, &scan.source) else {
        return done(
            report,
            Err(policy.origin.error(
                ObjectCode::DependencyFailed.as_str(),
                "spec.imageRepositoryRef",
                "no scan",
            )),
        );
    };
    report.image = result.image.clone();
    report.stale = scan.report.stale;
    let explained = ImagePolicy::new(&policy.spec).and_then(|p| p.explain(&result.tags, 5));
    let explanation = match explained {
        Ok(x) => x,
        Err(e) => {
            let error = policy.origin.error(e.code(), "spec.policy", e.to_string());
            return done(report, Err(error));
        }
    };
    let tag = explanation.latest.clone();
    report.latest_tag = Some(tag.clone());
    report.explanation = Some(explanation);
    let mut image = format!("{}:{tag}", result.image);
    if policy.digest_reflection != DigestReflection::Never {
        match source.resolve_digest(&result.image, &tag).await {
            Ok(digest) => image.push_str(&format!("@{digest}")),
            Err(e) => {
                let error = policy.origin.error(
                    e.code(),
                    "spec.digestReflectionPolicy",
                    format!("resolving the digest of {tag}: {e}"),
                );
                return done(report, Err(error));
            }
        }
    }
    done(report, Ok(image))
}

/// Stage 2: selects every policy.
pub async fn select_policies(objects: &FluxObjects, scans: &Scans) -> Selections {
    let mut by_key = BTreeMap::new();
    for policy in &objects.policies {
        let selection = select_policy(objects, scans, policy).await;
        by_key.insert(policy.origin.key.clone(), selection);
    }
    Selections { by_key }
}
