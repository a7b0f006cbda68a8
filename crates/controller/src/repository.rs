//! ImageRepository, as image-reflector-controller reconciles it: scan when never scanned,
//! on a new reconcile request, a new image or exclusion list, an empty store, or when the
//! interval has passed; otherwise requeue for the rest of the interval. The listing is the
//! facade's [`scan_repository`]; the tags go to the [`TagStore`](crate::store::TagStore).

use crate::objects::{self, FluxKind};
use crate::reconcile::{Ctx, ReconcileError};
use crate::status::{go_duration, reason, Outcome, StatusUpdate};
use crate::store::revision;
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagsmith::config::RunConfig;
use tagsmith::crd::ImageRepository;
use tagsmith::run::{scan_repository, RunContext};

const KIND: FluxKind = FluxKind::ImageRepository;

/// `ref.Context().String()` of go-containerregistry for `image`, or Flux's refusal
/// (`ParseImageReference`): no URL scheme, no tag.
pub fn canonical_image_name(image: &str) -> Result<String, String> {
    if let Some((scheme, _)) = image.split_once("://") {
        return Err(format!(
            "image '{image}' should not include URL scheme; remove '{scheme}://'"
        ));
    }
    let reference: oci_client::Reference = image
        .parse()
        .map_err(|e| format!("could not parse reference: {image}: {e}"))?;
    let rest = image.strip_prefix(reference.registry()).unwrap_or(image);
    if let Some(tag) = rest.split(':').nth(1) {
        return Err(format!(
            "image '{image}' should not include a tag; remove ':{tag}'"
        ));
    }
    Ok(format!(
        "{}/{}",
        reference.resolve_registry(),
        reference.repository()
    ))
}

/// Why to scan now (Flux's `shouldScan` reasons), or how long until the next scan.
enum ScanDecision {
    Now(&'static str),
    Later(Duration),
}

fn should_scan(
    obj: &DynamicObject,
    repo: &ImageRepository,
    canonical: &str,
    update: &StatusUpdate,
    ctx: &Ctx,
) -> ScanDecision {
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let Some(last) = status.get("lastScanResult").filter(|v| v.is_object()) else {
        return ScanDecision::Now("first scan");
    };
    if let Some(requested) = objects::requested_at(obj) {
        if Some(requested) != update.last_handled_reconcile_at() {
            return ScanDecision::Now("reconcile requested");
        }
    }
    if status["canonicalImageName"].as_str() != Some(canonical) {
        return ScanDecision::Now("new image name");
    }
    let observed: BTreeSet<&str> = status["observedExclusionList"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let wanted: BTreeSet<&str> = repo.exclusion_list.iter().map(String::as_str).collect();
    if observed != wanted {
        return ScanDecision::Now("updated exclusion list");
    }
    if ctx
        .store
        .tags(&repo.image)
        .is_none_or(|e| e.tags.is_empty())
    {
        return ScanDecision::Now("no tags in database");
    }
    let scanned = last["scanTime"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok());
    let Some(scanned) = scanned else {
        return ScanDecision::Now("first scan");
    };
    let elapsed = Timestamp::now().duration_since(scanned).unsigned_abs();
    match repo.interval.checked_sub(elapsed) {
        Some(left) if left >= Duration::from_secs(1) => ScanDecision::Later(left),
        _ => ScanDecision::Now("triggered by interval"),
    }
}

/// Reconciles one ImageRepository.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    if obj.metadata.deletion_timestamp.is_some() {
        return ctx.delete(KIND, &obj).await;
    }
    let mut update = StatusUpdate::new(&obj);
    if objects::suspended(&obj) {
        // Flux records the request even for a suspended repository, and nothing else.
        update.handled_request(objects::requested_at(&obj));
        ctx.write_status(KIND, &obj, &mut update).await?;
        ctx.record_metrics(KIND, &obj, &update, false, started);
        return Ok(Action::await_change());
    }
    let mut trace = String::new();
    let (outcome, requeue) = run(&obj, &ctx, &mut update, &mut trace).await?;
    crate::reconcile::trace(KIND, &obj, &outcome);
    let action = ctx
        .finish(KIND, &obj, &mut update, &outcome, Some(requeue), started)
        .await?;
    ctx.notify(KIND, &obj, &update, None, &trace);
    Ok(action)
}

async fn run(
    obj: &DynamicObject,
    ctx: &Ctx,
    update: &mut StatusUpdate,
    trace: &mut String,
) -> Result<(Outcome, Duration), ReconcileError> {
    let none = Duration::ZERO;
    let repo = match objects::read_objects(KIND, obj, &[]) {
        Ok(mut read) => match read.repositories.pop() {
            Some(repo) => repo,
            None => {
                return Ok((
                    Outcome::stalled(reason::FAILED, "the object could not be read"),
                    none,
                ))
            }
        },
        Err(e) => {
            let why = if e.message.starts_with("spec.image") {
                reason::IMAGE_URL_INVALID
            } else {
                reason::FAILED
            };
            return Ok((Outcome::stalled(why, e.message), none));
        }
    };
    update.progressing("reconciliation in progress");
    let requested = objects::requested_at(obj);
    // Flux writes this progress at once, then again when the scan starts. A scan takes
    // milliseconds to seconds: tagsmith writes the progress only when a reconcile was
    // requested (someone may be watching), and otherwise only the outcome (a third of the
    // status writes at scale).
    if update.generation() != update.observed_generation() {
        update.progressing(&format!(
            "processing object: new generation {} -> {}",
            update.observed_generation(),
            update.generation()
        ));
    }
    let announce = requested.is_some() && requested != update.last_handled_reconcile_at();
    let canonical = match canonical_image_name(&repo.image) {
        Ok(name) => name,
        Err(message) => return Ok((Outcome::stalled(reason::IMAGE_URL_INVALID, message), none)),
    };
    let mut names: Vec<&str> = Vec::new();
    for reference in [&repo.secret_ref, &repo.cert_secret_ref]
        .into_iter()
        .flatten()
    {
        names.push(reference.name());
    }
    let mut secrets = tagsmith::secrets::MapSecrets::default();
    match ctx
        .read_secrets(&mut secrets, objects::namespace_of(obj), &names)
        .await
    {
        Ok(()) => {}
        Err(message) => {
            return Ok((
                Outcome::retry(
                    reason::AUTHENTICATION_FAILED,
                    format!("failed to configure authentication options: {message}"),
                ),
                none,
            ))
        }
    }
    let interval = repo.interval;
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let old_revision = status["lastScanResult"]["revision"]
        .as_str()
        .map(str::to_string);
    let mut last_scan = status
        .get("lastScanResult")
        .cloned()
        .filter(Value::is_object);
    let when = match should_scan(obj, &repo, &canonical, update, ctx) {
        ScanDecision::Now(why) => {
            update.progressing_with(why == "no tags in database", &format!("scanning: {why}"));
            if announce {
                ctx.write_status(KIND, obj, update).await?;
            }
            // The controller keeps the tags itself (the store): the facade lists.
            let config = RunConfig {
                no_cache: true,
                ..RunConfig::default()
            };
            let mut run = RunContext::new(config).with_secrets(Arc::new(secrets));
            // Without credentials of its own, a repository is listed through the shared
            // client (connections and tokens reused); the facade still bounds each call by
            // the repository's `spec.timeout`.
            if repo.secret_ref.is_none() && repo.cert_secret_ref.is_none() {
                if let Some(shared) = ctx.shared_source(repo.insecure) {
                    run = run.with_tag_source(shared);
                }
            }
            let scan = scan_repository(&run, &repo).await;
            let result = match (scan.result, scan.report.error) {
                (Some(result), None) => result,
                (_, error) => {
                    let message = error.map_or_else(
                        || "no result".to_string(),
                        |e| objects::without_location(&e, &objects::origin_path(KIND, obj)).message,
                    );
                    return Ok((
                        Outcome::retry(
                            reason::READ_OPERATION_FAILED,
                            format!("scan failed: {message}"),
                        ),
                        none,
                    ));
                }
            };
            // A private file written atomically and synced: off the async workers.
            let (store, image, tags) = (ctx.store.clone(), repo.image.clone(), result.tags.clone());
            let scanned_at = result.scanned_at;
            let _ = tokio::task::spawn_blocking(move || {
                store.put_if_changed(&image, &tags, scanned_at)
            })
            .await;
            let revision = revision(&result.tags);
            let mut scan_result = json!({
                "revision": revision,
                "tagCount": result.tag_count,
                "scanTime": crate::status::now_rfc3339(),
            });
            if !result.latest_tags.is_empty() {
                scan_result["latestTags"] = json!(result.latest_tags);
            }
            *trace = if old_revision.as_deref() == Some(revision.as_str()) {
                format!(
                    "tags did not change, next scan in {}",
                    go_duration(interval)
                )
            } else {
                format!("successful scan, next scan in {}", go_duration(interval))
            };
            last_scan = Some(scan_result);
            interval
        }
        ScanDecision::Later(left) => {
            *trace = format!(
                "no change in repository configuration since last scan, next scan in {}",
                go_duration(left)
            );
            left
        }
    };
    let last_scan = last_scan.unwrap_or(Value::Null);
    let message = format!(
        "successful scan: found {} tags with checksum {}",
        last_scan["tagCount"].as_u64().unwrap_or(0),
        last_scan["revision"].as_str().unwrap_or_default()
    );
    update.fields.insert("lastScanResult".into(), last_scan);
    update
        .fields
        .insert("canonicalImageName".into(), Value::String(canonical));
    update
        .fields
        .insert("observedExclusionList".into(), json!(repo.exclusion_list));
    Ok((Outcome::success(message), when))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_are_go_containerregistrys() {
        assert_eq!(
            canonical_image_name("alpine").as_deref(),
            Ok("index.docker.io/library/alpine")
        );
        assert_eq!(
            canonical_image_name("docker.io/fluxcd/flux").as_deref(),
            Ok("index.docker.io/fluxcd/flux")
        );
        assert_eq!(
            canonical_image_name("127.0.0.1:5000/podinfo").as_deref(),
            Ok("127.0.0.1:5000/podinfo")
        );
        assert_eq!(
            canonical_image_name("ghcr.io/stefanprodan/podinfo").as_deref(),
            Ok("ghcr.io/stefanprodan/podinfo")
        );
    }

    #[test]
    fn schemes_and_tags_are_refused_in_fluxs_words() {
        assert_eq!(
            canonical_image_name("https://ghcr.io/app"),
            Err(
                "image 'https://ghcr.io/app' should not include URL scheme; remove 'https://'"
                    .into()
            )
        );
        assert_eq!(
            canonical_image_name("ghcr.io/app:1.0"),
            Err("image 'ghcr.io/app:1.0' should not include a tag; remove ':1.0'".into())
        );
        assert_eq!(
            canonical_image_name("127.0.0.1:5000/app:2"),
            Err("image '127.0.0.1:5000/app:2' should not include a tag; remove ':2'".into())
        );
    }
}
