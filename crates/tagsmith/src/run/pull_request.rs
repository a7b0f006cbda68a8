//! Stage 5, pull requests: after an automation pushed to a branch of its own, the pull
//! request from it to the checkout branch is opened, or the open one brought up to date;
//! when the branch no longer differs from its base (merged, or bumped by hand), an open pull
//! request of tagsmith's is closed with a comment. A rerun never opens a second one: the
//! forge is asked for the open pull request by head and base branch.

use super::report::{PullRequestAction, PullRequestReport, PushBranch};
use super::select::Selections;
use super::RunContext;
use crate::crd::Automation;
use crate::error::ObjectError;
use tagsmith_forge::{
    close_pull_request_if_open, connect, ensure_pull_request, render_body, BodyChange, BodyPolicy,
    CloseOutcome, ForgeConfig, ForgeKind, PrBody, PrOutcome, PullRequestSpec, RepoId,
};
use tagsmith_image_policy_core::PolicyKind;
use tagsmith_marker_setter::SetterResult;

/// What one pushed branch asks of its pull request.
pub struct BranchUpdate<'a> {
    /// The push branch (the pull request's head).
    pub branch: &'a str,
    /// The branch it is built on (the pull request's base).
    pub base: &'a str,
    /// What the push did.
    pub state: PushBranch,
    /// The commit message (its first line is the title).
    pub message: Option<&'a str>,
    /// The setter's changes on this branch.
    pub result: &'a SetterResult,
    /// The policy of this branch, with one branch per policy.
    pub policy: Option<&'a str>,
}

fn forge_error(e: tagsmith_forge::ForgeError) -> ObjectError {
    ObjectError::from_coded(e.code(), &e)
}

/// The forge and repository of a remote URL, from the configuration.
fn forge_for(
    ctx: &RunContext,
    remote_url: &str,
) -> Result<(Box<dyn tagsmith_forge::Forge>, RepoId), ObjectError> {
    let repo = RepoId::from_remote(remote_url).map_err(forge_error)?;
    let kind = match &ctx.config.forge {
        Some(kind) => kind.parse::<ForgeKind>().map_err(forge_error)?,
        None => repo.detect_forge().ok_or_else(|| {
            ObjectError::new(
                crate::error::ObjectCode::PullRequest.as_str(),
                format!(
                    "which forge serves {}? Pass --forge gitea|github|gitlab (and --forge-url for a self-hosted one)",
                    repo.host()
                ),
            )
        })?,
    };
    let token = ctx.config.forge_token.clone().ok_or_else(|| {
        ObjectError::new(
            crate::error::ObjectCode::PullRequest.as_str(),
            format!(
                "opening pull requests on {} needs a token: set TAGSMITH_FORGE_TOKEN",
                kind.as_str()
            ),
        )
    })?;
    let mut config = ForgeConfig::new(kind, token);
    if let Some(url) = &ctx.config.forge_url {
        config = config.with_api_url(url.clone());
    }
    let forge = connect(&config).map_err(forge_error)?;
    Ok((forge, repo))
}

/// A policy's rule as a person reads it.
fn rule(kind: &PolicyKind, pattern: Option<&str>) -> String {
    let base = match kind {
        PolicyKind::Semver { range } => format!("semver {range}"),
        PolicyKind::Alphabetical { order } => format!("alphabetical {order}"),
        PolicyKind::Numerical { order } => format!("numerical {order}"),
    };
    match pattern {
        Some(p) => format!("{base}, tags matching {p}"),
        None => base,
    }
}

/// The description: every change (file:line, policy, old -> new) and why each policy chose
/// what it chose, from the same explanation `--json` gives.
fn body(
    automation: &Automation,
    objects: &crate::crd::FluxObjects,
    selections: &Selections,
    update: &BranchUpdate<'_>,
) -> String {
    let mut changes = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for (file, _, change) in update.result.changes() {
        let path = super::report::from_repo_root(&automation.update_path, &file.path);
        // The setter names `ns:name[:field]`; the policy is `ns:name`.
        let key: String = change
            .setter
            .splitn(3, ':')
            .take(2)
            .collect::<Vec<_>>()
            .join(":");
        if !keys.contains(&key) {
            keys.push(key.clone());
        }
        changes.push(BodyChange {
            file: path,
            line: change.line as u64,
            policy: key.replacen(':', "/", 1),
            old: change.old_value.clone(),
            new: change.new_value.clone(),
        });
    }
    let policies = keys
        .iter()
        .filter_map(|key| {
            let object = objects.policies.iter().find(|p| &p.origin.key() == key)?;
            let selection = selections.get(&object.origin.key)?;
            let explanation = selection.report.explanation.as_ref()?;
            let pattern = object
                .spec
                .filter_tags
                .as_ref()
                .and_then(|f| f.pattern.as_deref());
            Some(BodyPolicy {
                policy: key.replacen(':', "/", 1),
                image: selection.report.image.clone(),
                rule: rule(&object.spec.kind, pattern),
                candidates: explanation.counts.candidates,
                chosen: explanation.latest.clone(),
                runner_up: explanation
                    .top
                    .iter()
                    .map(|c| c.tag.clone())
                    .find(|t| *t != explanation.latest),
            })
        })
        .collect();
    render_body(&PrBody {
        automation: automation.origin.key().replacen(':', "/", 1),
        changes,
        policies,
    })
}

/// Opens, updates or closes the pull request of one pushed branch.
pub async fn reconcile_pull_request(
    ctx: &RunContext,
    remote_url: &str,
    automation: &Automation,
    objects: &crate::crd::FluxObjects,
    selections: &Selections,
    update: BranchUpdate<'_>,
) -> Result<PullRequestReport, ObjectError> {
    let (forge, repo) = forge_for(ctx, remote_url)?;
    let mut report = PullRequestReport {
        branch: update.branch.to_string(),
        base: update.base.to_string(),
        policy: update.policy.map(str::to_string),
        action: PullRequestAction::None,
        number: None,
        url: None,
    };
    match update.state {
        PushBranch::Pushed | PushBranch::Rebuilt | PushBranch::UpToDate => {
            let title = update
                .message
                .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
                .map(|l| crate::error::one_line(l.trim(), 200))
                .unwrap_or_else(|| format!("Update images ({})", automation.origin.key));
            let spec = PullRequestSpec {
                repo,
                head: update.branch.to_string(),
                base: update.base.to_string(),
                title,
                body: body(automation, objects, selections, &update),
                labels: ctx.config.pr_labels.clone(),
                reviewers: ctx.config.pr_reviewers.clone(),
            };
            let outcome = ensure_pull_request(&*forge, &spec)
                .await
                .map_err(forge_error)?;
            report.number = Some(outcome.number());
            report.url = Some(outcome.url().to_string());
            report.action = match outcome {
                PrOutcome::Opened { .. } => PullRequestAction::Opened,
                PrOutcome::Updated { .. } => PullRequestAction::Updated,
                PrOutcome::Unchanged { .. } => PullRequestAction::Unchanged,
                PrOutcome::NotOurs { .. } => PullRequestAction::NotOurs,
            };
        }
        PushBranch::Merged | PushBranch::Stale | PushBranch::Absent => {
            let comment = format!(
                "Closed by tagsmith: {} no longer differs from {} (the update was merged or made on {} by hand).",
                update.branch, update.base, update.base
            );
            let closed =
                close_pull_request_if_open(&*forge, &repo, update.branch, update.base, &comment)
                    .await
                    .map_err(forge_error)?;
            match closed {
                Some(CloseOutcome::Closed { number, url }) => {
                    report.action = PullRequestAction::Closed;
                    report.number = Some(number);
                    report.url = Some(url);
                }
                Some(CloseOutcome::NotOurs { number, url, .. }) => {
                    report.action = PullRequestAction::NotOurs;
                    report.number = Some(number);
                    report.url = Some(url);
                }
                None => {}
            }
        }
    }
    Ok(report)
}
