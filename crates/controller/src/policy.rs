//! ImagePolicy, as image-reflector-controller reconciles it: the latest tag of its
//! ImageRepository's stored tags, chosen by the facade's [`select_policy`] (the same
//! selection as `tagsmith run`), written to `status.latestRef` with the previous one in
//! `status.observedPreviousRef`. Re-run when its repository's tags change.

use crate::objects::{self, FluxKind};
use crate::reconcile::{api_error, Ctx, ReconcileError};
use crate::repository::canonical_image_name;
use crate::status::{go_duration, reason, Outcome, StatusUpdate};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagsmith::config::RunConfig;
use tagsmith::crd::DigestReflection;
use tagsmith::registry::ScanResult;
use tagsmith::run::{
    scan_repository, select_policy, RepositoryReport, RepositoryScan, RunContext, Scans,
};

const KIND: FluxKind = FluxKind::ImagePolicy;

/// Flux's Ready message for a policy (`composeImagePolicyReadyMessage`).
pub fn ready_message(latest: &Value, previous: Option<&Value>) -> String {
    let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let mut message = format!(
        "Latest image tag for {} resolved to {}",
        field(latest, "name"),
        field(latest, "tag")
    );
    let digest = field(latest, "digest");
    if !digest.is_empty() {
        message.push_str(&format!(" with digest {digest}"));
    }
    if let Some(previous) = previous.filter(|p| *p != latest && p.is_object()) {
        message.push_str(&format!(
            " (previously {}:{}",
            field(previous, "name"),
            field(previous, "tag")
        ));
        let digest = field(previous, "digest");
        if !digest.is_empty() {
            message.push_str(&format!("@{digest}"));
        }
        message.push(')');
    }
    message
}

/// Reconciles one ImagePolicy.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    if obj.metadata.deletion_timestamp.is_some() {
        return ctx.delete(KIND, &obj).await;
    }
    let mut update = StatusUpdate::new(&obj);
    if objects::suspended(&obj) {
        update.handled_request(objects::requested_at(&obj));
        ctx.write_status(KIND, &obj, &mut update).await?;
        ctx.record_metrics(KIND, &obj, &update, false, started);
        return Ok(Action::await_change());
    }
    let (outcome, requeue) = run(&obj, &ctx, &mut update).await?;
    if outcome == Outcome::Pending {
        // The repository's first scan will trigger this policy again.
        return Ok(Action::requeue(
            requeue.unwrap_or(ctx.options.requeue_dependency),
        ));
    }
    crate::reconcile::trace(KIND, &obj, &outcome);
    // Waiting for the repository's first scan is retried after --requeue-dependency, not
    // with the failure backoff.
    let waiting =
        matches!(&outcome, Outcome::Retry { reason: r, .. } if r == reason::DEPENDENCY_NOT_READY);
    let mut action = ctx
        .finish(KIND, &obj, &mut update, &outcome, requeue, started)
        .await?;
    if waiting {
        action = Action::requeue(ctx.options.requeue_dependency);
    }
    let message = update
        .get(crate::status::READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    ctx.notify(KIND, &obj, &update, None, &message);
    Ok(action)
}

async fn run(
    obj: &DynamicObject,
    ctx: &Ctx,
    update: &mut StatusUpdate,
) -> Result<(Outcome, Option<Duration>), ReconcileError> {
    let mut read = match objects::read_objects(KIND, obj, &[]) {
        Ok(read) => read,
        Err(e) => {
            return Ok((
                Outcome::stalled(
                    reason::INVALID_POLICY,
                    format!("invalid policy: {}", e.message),
                ),
                None,
            ))
        }
    };
    let Some(mut policy) = read.policies.pop() else {
        return Ok((
            Outcome::stalled(reason::INVALID_POLICY, "invalid policy"),
            None,
        ));
    };
    let interval = objects::str_at(obj, "/spec/interval").and_then(tagsmith::crd::parse_duration);
    if policy.digest_reflection == DigestReflection::Always && interval.is_none() {
        return Ok((
            Outcome::stalled(
                reason::INTERVAL_NOT_CONFIGURED,
                "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
            ),
            None,
        ));
    }
    let requeue = interval.filter(|_| policy.digest_reflection == DigestReflection::Always);
    // A policy's run is short (no network unless a digest is resolved): its progress is
    // not written on its own, only its outcome (Flux writes both).
    update.progressing("reconciliation in progress");
    if update.generation() != update.observed_generation() {
        update.progressing(&format!(
            "processing object: new generation {} -> {}",
            update.observed_generation(),
            update.generation()
        ));
    }
    let repo_key = policy.repository.clone();
    let get_failed = |why: &str, message: String| {
        Outcome::retry(
            why,
            format!("failed to get the referred ImageRepository: {message}"),
        )
    };
    let repo_obj = match ctx
        .lookup(
            FluxKind::ImageRepository,
            &ctx.repositories,
            repo_key.namespace(),
            repo_key.name(),
        )
        .await
    {
        Ok(Some(repo)) => repo,
        Ok(None) => {
            return Ok((
                get_failed(
                    reason::DEPENDENCY_NOT_READY,
                    format!(
                        "referenced ImageRepository does not exist: {}",
                        FluxKind::ImageRepository.not_found(repo_key.name())
                    ),
                ),
                requeue,
            ))
        }
        Err(e) => return Ok((get_failed(reason::FAILURE, api_error(&e)), requeue)),
    };
    let mut objects_read =
        match objects::read_objects(KIND, obj, &[(FluxKind::ImageRepository, &repo_obj)]) {
            Ok(read) => read,
            Err(e) => return Ok((Outcome::stalled(reason::INVALID_POLICY, e.message), None)),
        };
    let Some(repo) = objects_read
        .repositories
        .iter()
        .find(|r| r.origin.key == repo_key)
        .cloned()
    else {
        let why = objects_read
            .failures
            .first()
            .map(|f| objects::without_location(&f.error, Path::new("")).message)
            .unwrap_or_default();
        let message = format!("ImageRepository {repo_key} could not be read: {why}");
        if why.contains("spec.image") {
            return Ok((Outcome::stalled(reason::IMAGE_URL_INVALID, message), None));
        }
        return Ok((
            Outcome::retry(reason::DEPENDENCY_NOT_READY, message),
            requeue,
        ));
    };
    if let Err(message) = canonical_image_name(&repo.image) {
        return Ok((Outcome::stalled(reason::IMAGE_URL_INVALID, message), None));
    }
    if repo_key.namespace() != objects::namespace_of(obj) {
        let namespace = objects::namespace_of(obj);
        match ctx.namespace_labels(namespace).await {
            Ok(labels) => objects_read.add_text(
                Path::new("cluster:Namespace"),
                &objects::namespace_json(namespace, &labels),
            ),
            Err(e) => return Ok((get_failed(reason::FAILURE, api_error(&e)), requeue)),
        }
    }
    let stored = ctx.store.tags(&repo.image).filter(|s| !s.tags.is_empty());
    let Some(stored) = stored else {
        if first_scan_pending(obj, &repo_obj, ctx.options.requeue_dependency) {
            return Ok((Outcome::Pending, Some(ctx.options.requeue_dependency)));
        }
        return Ok((
            Outcome::retry(
                reason::DEPENDENCY_NOT_READY,
                format!(
                    "retrying in {} error: no tags in database",
                    go_duration(ctx.options.requeue_dependency)
                ),
            ),
            None,
        ));
    };
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let old_latest = status.get("latestRef").cloned().filter(Value::is_object);
    // Flux resolves the digest again only when the tag changed (IfNotPresent): the old
    // digest is reused, so the registry is not asked on every reconciliation.
    let if_not_present = policy.digest_reflection == DigestReflection::IfNotPresent;
    let mut secrets = tagsmith::secrets::MapSecrets::default();
    if policy.digest_reflection != DigestReflection::Never {
        let names: Vec<&str> = [&repo.secret_ref, &repo.cert_secret_ref]
            .into_iter()
            .flatten()
            .map(|k| k.name())
            .collect();
        if let Err(message) = ctx
            .read_secrets(&mut secrets, repo_key.namespace(), &names)
            .await
        {
            return Ok((
                Outcome::retry(
                    reason::FAILURE,
                    format!("failed to configure authentication options: {message}"),
                ),
                requeue,
            ));
        }
    }
    if if_not_present {
        policy.digest_reflection = DigestReflection::Never;
    }
    let mut scans = Scans::default();
    let needs_credentials = policy.digest_reflection != DigestReflection::Never || if_not_present;
    let shared = ctx.shared_source(repo.insecure);
    match shared {
        Some(source)
            if !(needs_credentials
                && (repo.secret_ref.is_some() || repo.cert_secret_ref.is_some())) =>
        {
            // The repository's stored scan, as it is (digests, if any, through the shared
            // client: the repository has no credentials of its own).
            scans.insert(repo_key.clone(), stored_scan(&repo, stored, source));
        }
        _ => {
            // The facade's scan through the store (an interval no stored scan is older
            // than), with the repository's credentials for its digests.
            let config = RunConfig {
                cache_dir: Some(ctx.store.dir()),
                ..RunConfig::default()
            };
            let run = RunContext::new(config).with_secrets(Arc::new(secrets));
            let mut from_store = repo.clone();
            from_store.interval = Duration::MAX;
            scans.insert(repo_key.clone(), scan_repository(&run, &from_store).await);
        }
    }
    let mut selection = select_policy(&objects_read, &scans, &policy).await;
    let tag = selection.report.latest_tag.clone();
    if let (true, Some(tag)) = (if_not_present, &tag) {
        let old_digest = old_latest.as_ref().and_then(|old| {
            (old["name"] == repo.image.as_str() && old["tag"] == tag.as_str())
                .then(|| old["digest"].as_str().map(str::to_string))
                .flatten()
                .filter(|d| !d.is_empty())
        });
        match old_digest {
            Some(digest) => {
                selection.latest_image = Some(format!("{}:{tag}@{digest}", repo.image));
            }
            None => {
                policy.digest_reflection = DigestReflection::IfNotPresent;
                selection = select_policy(&objects_read, &scans, &policy).await;
            }
        }
    }
    if let Some(error) = &selection.report.error {
        let message = objects::without_location(error, &objects::origin_path(KIND, obj)).message;
        let outcome = match error.code.as_str() {
            "access_denied" => {
                get_failed(reason::ACCESS_DENIED, format!("access denied: {message}"))
            }
            "dependency_failed" | "missing_reference" => {
                Outcome::retry(reason::DEPENDENCY_NOT_READY, message)
            }
            _ => Outcome::retry(reason::FAILURE, message),
        };
        return Ok((outcome, requeue));
    }
    let (Some(tag), Some(image)) = (
        selection.report.latest_tag.clone(),
        selection.latest_image.clone(),
    ) else {
        return Ok((
            Outcome::retry(reason::FAILURE, "no tag was chosen"),
            requeue,
        ));
    };
    let digest = image
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let mut latest = json!({"name": repo.image, "tag": tag});
    if !digest.is_empty() {
        latest["digest"] = Value::String(digest);
    }
    let previous = status
        .get("observedPreviousRef")
        .cloned()
        .filter(Value::is_object);
    let previous = if old_latest.as_ref() != Some(&latest) {
        update.fields.insert("latestRef".into(), latest.clone());
        match &old_latest {
            Some(old) => {
                update
                    .fields
                    .insert("observedPreviousRef".into(), old.clone());
                Some(old.clone())
            }
            None => {
                update.fields.remove("observedPreviousRef");
                None
            }
        }
    } else {
        previous
    };
    Ok((
        Outcome::success(ready_message(&latest, previous.as_ref())),
        requeue,
    ))
}

/// Whether `policy` is new and its repository is scanning for the first time (no scan
/// result, no failure yet): the policy then waits for that scan, which triggers it, rather
/// than writing a failure that the scan will undo a moment later (Flux writes
/// `DependencyNotReady` then). A policy older than `grace`, or a repository that failed,
/// gets its failure written as Flux writes it.
pub fn first_scan_pending(policy: &DynamicObject, repo: &DynamicObject, grace: Duration) -> bool {
    let repo_status = &repo.data["status"];
    let repo_failed = repo_status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            (c["type"] == "Ready" && c["status"] == "False")
                || (c["type"] == "Stalled" && c["status"] == "True")
        });
    repo_status.get("lastScanResult").is_none_or(Value::is_null)
        && !repo_failed
        && !has_ready(policy)
        && is_new(policy, grace)
}

/// Whether the object has a Ready condition that is True or False (it was reconciled).
pub fn has_ready(obj: &DynamicObject) -> bool {
    obj.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && (c["status"] == "True" || c["status"] == "False"))
}

/// Whether the object was created less than `grace` ago.
pub fn is_new(obj: &DynamicObject, grace: Duration) -> bool {
    obj.metadata.creation_timestamp.as_ref().is_some_and(|t| {
        k8s_openapi::jiff::Timestamp::now()
            .duration_since(t.0)
            .unsigned_abs()
            < grace
    })
}

/// A repository's scan as the store holds it (tags after exclusions, in Flux's order).
fn stored_scan(
    repo: &tagsmith::crd::ImageRepository,
    stored: tagsmith::registry::CachedTags,
    source: Arc<dyn tagsmith::registry::TagSource>,
) -> RepositoryScan {
    let latest_tags: Vec<String> = stored
        .tags
        .iter()
        .take(tagsmith::registry::LATEST_TAGS)
        .cloned()
        .collect();
    RepositoryScan {
        report: RepositoryReport {
            repository: repo.origin.key(),
            cluster: None,
            image: repo.image.clone(),
            tag_count: stored.tags.len(),
            latest_tags: latest_tags.clone(),
            cached: true,
            stale: false,
            scanned_at: stored.scanned_at,
            error: None,
        },
        result: Some(ScanResult {
            image: repo.image.clone(),
            tag_count: stored.tags.len(),
            tags: stored.tags,
            excluded_count: 0,
            latest_tags,
            scanned_at: stored.scanned_at,
            duration_ms: 0,
        }),
        source: Some(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_messages_are_fluxs() {
        let latest = json!({"name": "ghcr.io/app", "tag": "1.2.0"});
        assert_eq!(
            ready_message(&latest, None),
            "Latest image tag for ghcr.io/app resolved to 1.2.0"
        );
        let previous = json!({"name": "ghcr.io/app", "tag": "1.1.0", "digest": "sha256:ab"});
        let with_digest = json!({"name": "ghcr.io/app", "tag": "1.2.0", "digest": "sha256:cd"});
        assert_eq!(
            ready_message(&with_digest, Some(&previous)),
            "Latest image tag for ghcr.io/app resolved to 1.2.0 with digest sha256:cd (previously ghcr.io/app:1.1.0@sha256:ab)"
        );
        assert_eq!(
            ready_message(&latest, Some(&latest)),
            "Latest image tag for ghcr.io/app resolved to 1.2.0"
        );
    }
}
