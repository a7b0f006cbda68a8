//! ImageUpdateAutomation, as image-automation-controller reconciles it: clone its
//! GitRepository (credentials from that GitRepository's Secret), apply the latest images of
//! the policies it selects (their `status.latestRef`), commit and push: the facade's
//! [`Workspace::prepare_with_auth`] and [`update_automation`], on a blocking thread
//! (libgit2 blocks), so the same commit `tagsmith run` makes, byte for byte.

use crate::objects::{self, FluxKind};
use crate::reconcile::{api_error, Ctx, ReconcileError};
use crate::status::{reason, Outcome, StatusUpdate};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tagsmith::config::RunConfig;
use tagsmith::crd::{Automation, FluxObjects};
use tagsmith::git::CheckoutRef;
use tagsmith::run::{
    update_automation, AutomationReport, PolicyReport, PolicySelection, RunContext, Selections,
    Workspace,
};

const KIND: FluxKind = FluxKind::ImageUpdateAutomation;

/// The Ready message of a successful run (image-automation-controller's `readyMessage`).
pub const READY_MESSAGE: &str = "repository up-to-date";

/// The reason a reading failure of the automation stalls it with, by the field it names.
fn stalled_reason(message: &str) -> &'static str {
    let field = message.split(':').next().unwrap_or_default();
    if field.starts_with("spec.update.strategy") {
        reason::INVALID_UPDATE_STRATEGY
    } else if field.starts_with("spec.git.commit.messageTemplate") && message.contains(".Updated") {
        reason::REMOVED_TEMPLATE_FIELD
    } else if field.starts_with("spec.policySelector") {
        reason::INVALID_POLICY_SELECTOR
    } else if field.starts_with("spec.sourceRef") || field.starts_with("spec.git.checkout") {
        reason::INVALID_SOURCE_CONFIGURATION
    } else if field.starts_with("spec.update") {
        reason::UPDATE_FAILED
    } else {
        reason::FAILED
    }
}

/// The Ready reason and message prefix of a failed update, by the error's family.
fn failure(code: &str) -> (&'static str, &'static str) {
    let family = tagsmith::error::error_kinds()
        .into_iter()
        .find(|k| k.code == code)
        .map(|k| k.family);
    match (family, code) {
        (_, "secret") => (
            reason::SOURCE_MANAGER_FAILED,
            "failed configuring source manager: ",
        ),
        (Some("git" | "forge"), _) | (_, "pull_request") => {
            (reason::GIT_OPERATION_FAILED, "failed to update source: ")
        }
        _ => (reason::UPDATE_FAILED, "failed to apply policies: "),
    }
}

/// Reconciles one ImageUpdateAutomation.
pub async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    if obj.metadata.deletion_timestamp.is_some() {
        return ctx.delete(KIND, &obj).await;
    }
    if objects::suspended(&obj) {
        // image-automation-controller returns before anything is written.
        let update = StatusUpdate::new(&obj);
        ctx.record_metrics(KIND, &obj, &update, false, started);
        return Ok(Action::await_change());
    }
    let mut update = StatusUpdate::new(&obj);
    let mut pushed = None;
    let (outcome, interval) = run(&obj, &ctx, &mut update, &mut pushed).await?;
    if outcome == Outcome::Pending {
        return Ok(Action::requeue(interval.unwrap_or(Duration::from_secs(2))));
    }
    crate::reconcile::trace(KIND, &obj, &outcome);
    let action = ctx
        .finish(KIND, &obj, &mut update, &outcome, interval, started)
        .await?;
    let trace = if pushed.is_none() && update.old(crate::status::READY).is_some() {
        "no change since last reconciliation".to_string()
    } else {
        READY_MESSAGE.to_string()
    };
    ctx.notify(KIND, &obj, &update, pushed, &trace);
    Ok(action)
}

async fn run(
    obj: &DynamicObject,
    ctx: &Ctx,
    update: &mut StatusUpdate,
    pushed: &mut Option<String>,
) -> Result<(Outcome, Option<Duration>), ReconcileError> {
    let stalled = |why: &str, message: String| Ok((Outcome::stalled(why, message), None));
    let source_kind = objects::str_at(obj, "/spec/sourceRef/kind").unwrap_or("GitRepository");
    if source_kind != "GitRepository" {
        return stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            format!("invalid source configuration: source kind '{source_kind}' not supported"),
        );
    }
    if obj.data["spec"].get("git").is_none() {
        return stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            "invalid source configuration: source kind 'GitRepository' necessitates field .spec.git".into(),
        );
    }
    let read = match objects::read_objects(KIND, obj, &[]) {
        Ok(read) => read,
        Err(e) => return stalled(stalled_reason(&e.message), e.message),
    };
    let Some(automation) = read.automations.first().cloned() else {
        return stalled(reason::FAILED, "the object could not be read".into());
    };
    let interval = Some(automation.interval.max(Duration::from_secs(1)));
    // New policies still being resolved for the first time: wait for them, so that a burst
    // of new objects makes one commit, not one per policy. Bounded: a policy gets a status
    // within --requeue-dependency of its creation.
    crate::runtime::ready(&ctx.all_policies, Duration::from_secs(30)).await;
    if policies_settling(ctx, &automation) {
        return Ok((Outcome::Pending, Some(Duration::from_secs(2))));
    }
    update.fields.insert(
        "lastAutomationRunTime".into(),
        Value::String(update.now().to_string()),
    );
    update.progressing("reconciliation in progress");
    let requested = objects::requested_at(obj);
    if update.generation() != update.observed_generation() {
        update.progressing(&format!(
            "processing object: new generation {} -> {}",
            update.observed_generation(),
            update.generation()
        ));
        ctx.write_status(KIND, obj, update).await?;
    } else if requested.is_some() && requested != update.last_handled_reconcile_at() {
        ctx.write_status(KIND, obj, update).await?;
    }
    let source_failed = |message: String| {
        Ok((
            Outcome::retry(
                reason::SOURCE_MANAGER_FAILED,
                format!("failed configuring source manager: {message}"),
            ),
            interval,
        ))
    };
    let Some(source) = automation.source.clone() else {
        return stalled(
            reason::INVALID_SOURCE_CONFIGURATION,
            "invalid source configuration: spec.sourceRef.name is required".into(),
        );
    };
    let git_obj = match ctx
        .lookup(
            FluxKind::GitRepository,
            &ctx.git_repositories,
            source.namespace(),
            source.name(),
        )
        .await
    {
        Ok(Some(git)) => git,
        Ok(None) => {
            return source_failed(format!(
                "referenced git repository does not exist: {}",
                FluxKind::GitRepository.not_found(source.name())
            ))
        }
        Err(e) => return source_failed(api_error(&e)),
    };
    let objects = match objects::read_objects(KIND, obj, &[(FluxKind::GitRepository, &git_obj)]) {
        Ok(objects) => objects,
        Err(e) => return stalled(stalled_reason(&e.message), e.message),
    };
    let Some(git) = objects.source_of(&automation).cloned() else {
        let why = objects
            .failures
            .first()
            .map(|f| f.error.message.clone())
            .unwrap_or_default();
        return source_failed(format!("GitRepository {source} could not be read: {why}"));
    };
    // Secrets: the GitRepository's (in its namespace) and the signing key (in the
    // automation's), handed to the facade in memory.
    let mut secrets = tagsmith::secrets::MapSecrets::default();
    if let Some(secret) = &git.secret_ref {
        match ctx
            .read_secrets(&mut secrets, secret.namespace(), &[secret.name()])
            .await
        {
            Ok(()) => {}
            Err(message) => {
                return source_failed(format!(
                    "failed to get secret '{}/{}': {message}",
                    secret.namespace(),
                    secret.name()
                ))
            }
        }
    }
    if let Some(secret) = &automation.signing_key_secret {
        match ctx
            .read_secrets(&mut secrets, secret.namespace(), &[secret.name()])
            .await
        {
            Ok(()) => {}
            Err(message) => {
                return Ok((
                    Outcome::retry(
                        reason::GIT_OPERATION_FAILED,
                        format!("failed to get the signing key: {message}"),
                    ),
                    interval,
                ))
            }
        }
    }
    let (selections, observed) = selections_for(ctx, &automation);
    let config = run_config(ctx, &git.url, &objects, &automation);
    let run = RunContext::new(config.clone()).with_secrets(Arc::new(secrets));
    if !ctx.leadership.is_leading() {
        return Err(ReconcileError::NotLeading);
    }
    let objects_text = format!(
        "{}\n---\n{}\n",
        objects::reader_json(KIND, obj),
        objects::reader_json(FluxKind::GitRepository, &git_obj)
    );
    let work = tokio::task::spawn_blocking(move || {
        blocking_update(
            &run,
            &config,
            &objects_text,
            &objects,
            &automation,
            &selections,
        )
    })
    .await;
    let done = match work {
        Ok(done) => done,
        Err(e) => {
            return Ok((
                Outcome::retry(
                    reason::GIT_OPERATION_FAILED,
                    format!("the update task failed: {e}"),
                ),
                interval,
            ))
        }
    };
    let (report, head, branch) = match done {
        Ok(done) => done,
        Err(message) => {
            return Ok((
                Outcome::retry(
                    reason::GIT_OPERATION_FAILED,
                    format!("failed to checkout source: {message}"),
                ),
                interval,
            ))
        }
    };
    if let Some(error) = &report.error {
        let message = objects::without_location(error, &objects::origin_path(KIND, obj)).message;
        let (why, prefix) = failure(&error.code);
        return Ok((Outcome::retry(why, format!("{prefix}{message}")), interval));
    }
    let revision = |commit: &str| format!("{}@sha1:{commit}", branch.as_deref().unwrap_or("HEAD"));
    match (&report.commit, &report.pushed_branch) {
        (Some(commit), Some(pushed_to)) => {
            update
                .fields
                .insert("lastPushCommit".into(), Value::String(commit.clone()));
            update.fields.insert(
                "lastPushTime".into(),
                Value::String(update.now().to_string()),
            );
            // Pushed to another branch than the one checked out: the checkout's commit is
            // what was observed of the source.
            let observed_commit = if branch.as_deref() == Some(pushed_to.as_str()) {
                commit.clone()
            } else {
                head.clone().unwrap_or_else(|| commit.clone())
            };
            update.fields.insert(
                "observedSourceRevision".into(),
                Value::String(revision(&observed_commit)),
            );
            let short: String = commit.chars().take(7).collect();
            let mut summary = format!("pushed commit '{short}' to branch '{pushed_to}'");
            if let Some(refspec) = &report_refspec(obj) {
                summary.push_str(&format!(" and refspecs '{refspec}'"));
            }
            *pushed = Some(format!(
                "{summary}\n{}",
                report.message.clone().unwrap_or_default()
            ));
        }
        _ => {
            if let Some(head) = &head {
                update.fields.insert(
                    "observedSourceRevision".into(),
                    Value::String(revision(head)),
                );
            }
        }
    }
    update
        .fields
        .insert("observedPolicies".into(), Value::Object(observed));
    Ok((Outcome::success(READY_MESSAGE), interval))
}

fn report_refspec(obj: &DynamicObject) -> Option<String> {
    objects::str_at(obj, "/spec/git/push/refspec").map(str::to_string)
}

/// Whether a policy the automation selects is new and not reconciled yet (the
/// controller's first list of every policy must be complete before this is asked).
fn policies_settling(ctx: &Ctx, automation: &Automation) -> bool {
    let namespace = automation.origin.namespace();
    ctx.all_policies.state().iter().any(|policy| {
        objects::namespace_of(policy) == namespace
            && automation
                .policy_selector
                .matches(&policy.metadata.labels.clone().unwrap_or_default())
            && !crate::policy::has_ready(policy)
            && crate::policy::is_new(policy, ctx.options.requeue_dependency)
    })
}

/// The selections the automation sees: every ImagePolicy in its namespace with a
/// `status.latestRef`, as `ns:name` -> `name:tag[@digest]` with its labels (the facade
/// applies the `policySelector`), and `status.observedPolicies` of those it selects.
fn selections_for(ctx: &Ctx, automation: &Automation) -> (Selections, Map<String, Value>) {
    let mut selections = Selections::default();
    let mut observed = Map::new();
    let namespace = automation.origin.namespace();
    let mut policies: Vec<Arc<DynamicObject>> = ctx
        .all_policies
        .state()
        .into_iter()
        .filter(|p| objects::namespace_of(p) == namespace)
        .collect();
    policies.sort_by(|a, b| objects::name_of(a).cmp(objects::name_of(b)));
    for policy in policies {
        let latest = &policy.data["status"]["latestRef"];
        let (Some(name), Some(tag)) = (latest["name"].as_str(), latest["tag"].as_str()) else {
            continue;
        };
        let Ok(key) = tagsmith::names::ObjectKey::new(namespace, objects::name_of(&policy)) else {
            continue;
        };
        let digest = latest["digest"].as_str().filter(|d| !d.is_empty());
        let image = match digest {
            Some(d) => format!("{name}:{tag}@{d}"),
            None => format!("{name}:{tag}"),
        };
        let labels: BTreeMap<String, String> = policy.metadata.labels.clone().unwrap_or_default();
        if automation.policy_selector.matches(&labels) {
            let mut entry = json!({"name": name, "tag": tag});
            if let Some(d) = digest {
                entry["digest"] = Value::String(d.to_string());
            }
            observed.insert(objects::name_of(&policy).to_string(), entry);
        }
        let report = PolicyReport {
            policy: key.to_string(),
            cluster: None,
            image: name.to_string(),
            latest_tag: Some(tag.to_string()),
            latest_image: Some(image.clone()),
            stale: false,
            suspended: false,
            explanation: None,
            error: None,
        };
        selections.insert(
            key,
            PolicySelection {
                report,
                latest_image: Some(image),
                labels,
            },
        );
    }
    (selections, observed)
}

/// The run configuration of one automation: its GitRepository's URL, the branch it checks
/// out (or, for a tag, commit or semver checkout, the objects to find it in), and the
/// controller's pull-request flags.
fn run_config(ctx: &Ctx, url: &str, objects: &FluxObjects, automation: &Automation) -> RunConfig {
    let mut config = RunConfig {
        url: Some(url.to_string()),
        pull_request: ctx.options.pull_request,
        forge: ctx.options.forge.clone(),
        forge_url: ctx.options.forge_url.clone(),
        forge_token: ctx.forge_token.clone(),
        pr_labels: ctx.options.pr_labels.clone(),
        pr_reviewers: ctx.options.pr_reviewers.clone(),
        branch_per_policy: ctx.options.branch_per_policy,
        no_cache: true,
        ..RunConfig::default()
    };
    if let Some(CheckoutRef::Branch(branch)) = objects.checkout_of(automation) {
        config.branch = Some(branch);
    }
    config
}

/// Clone, update, commit and push (blocking; call it from a blocking thread). Returns the report, the checked-out commit
/// and branch; `Err` when the checkout itself failed.
fn blocking_update(
    run: &RunContext,
    config: &RunConfig,
    objects_text: &str,
    objects: &FluxObjects,
    automation: &Automation,
    selections: &Selections,
) -> Result<(AutomationReport, Option<String>, Option<String>), String> {
    // A tag, commit, semver or named checkout: the workspace finds the ref in the objects,
    // given as a file (the API's objects, not the repository's).
    let objects_file = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    let mut config = config.clone();
    if config.branch.is_none() && objects.checkout_of(automation).is_some() {
        std::fs::write(objects_file.path(), objects_text).map_err(|e| e.to_string())?;
        config.config = Some(objects_file.path().to_path_buf());
    }
    let auth = git_auth(run, objects, automation)?;
    let workspace = Workspace::prepare_with_auth(&config, auth).map_err(|e| e.to_string())?;
    let repo = tagsmith::git::Repository::open(&workspace.root).ok();
    let head = repo.as_ref().and_then(|r| r.head_commit().ok());
    let branch = repo.as_ref().and_then(|r| r.current_branch().ok());
    // The facade's update does its git work in place and awaits only the forge: on this
    // blocking thread, run it to completion on the controller's runtime.
    let report = tokio::runtime::Handle::current().block_on(update_automation(
        run, &workspace, objects, automation, selections,
    ));
    Ok((report, head, branch))
}

/// The GitRepository's credentials, read by the facade's own rules (`identity` +
/// `known_hosts` [+ `password`], or `username` + `password`).
fn git_auth(
    run: &RunContext,
    objects: &FluxObjects,
    automation: &Automation,
) -> Result<tagsmith::git::GitAuth, String> {
    // `git_auth` takes explicit credentials from a workspace first; an empty one has none.
    let empty = tempfile::tempdir().map_err(|e| e.to_string())?;
    let none = Workspace::prepare(&RunConfig::for_root(empty.path())).map_err(|e| e.to_string())?;
    tagsmith::run::update::git_auth(run, &none, automation, objects).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_failures_stall_with_fluxs_reason_for_the_field() {
        assert_eq!(
            stalled_reason("spec.update.strategy: \"Kustomize\": only Setters is supported"),
            reason::INVALID_UPDATE_STRATEGY
        );
        assert_eq!(
            stalled_reason("spec.git.commit.messageTemplate: uses .Updated, which v1 removed"),
            reason::REMOVED_TEMPLATE_FIELD
        );
        assert_eq!(
            stalled_reason("spec.policySelector.matchExpressions[0].operator: x"),
            reason::INVALID_POLICY_SELECTOR
        );
    }

    #[test]
    fn update_failures_get_the_reason_of_their_family() {
        assert_eq!(failure("push_rejected").0, reason::GIT_OPERATION_FAILED);
        assert_eq!(failure("symlink_outside_root").0, reason::UPDATE_FAILED);
        assert_eq!(failure("secret").0, reason::SOURCE_MANAGER_FAILED);
    }
}
