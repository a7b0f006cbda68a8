//! Stages 3 and 4, per ImageUpdateAutomation: plan the setter's edits under its
//! `update.path` with the policies it selects, then commit and push them as its `git`
//! spec says. An automation fails alone (a bad path, a missing secret, a rejected push).

use super::report::{AutomationReport, PushBranch};
use super::select::Selections;
use super::workspace::Workspace;
use super::RunContext;
use crate::crd::{Automation, FluxObjects};
use crate::error::{ObjectCode, ObjectError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagsmith_git_commit::{
    commit_and_push, ApplyOutcome, BranchState, ChangeRecord, CommitOptions, GitAuth, KeySource,
    MessageTemplate, PushOutcome, PushTarget, Repository, Signature, SigningKey, TemplateData,
};
use tagsmith_marker_setter::{plan_tree, Policies, SetterResult, TreeOptions};

/// The policies an automation uses: those in its namespace that its `policySelector`
/// selects and that have a latest image, as `ns:name` -> image reference.
pub fn policies_for(
    automation: &Automation,
    selections: &Selections,
) -> Result<Policies, ObjectError> {
    let selected = selections.chosen().filter(|(key, selection, _)| {
        key.namespace() == automation.origin.namespace()
            && automation.policy_selector.matches(&selection.labels)
    });
    Policies::from_map(selected.map(|(k, _, image)| (k.to_string(), image.to_string())))
        .map_err(|e| ObjectError::from_coded(e.code(), &e))
}

/// `update_path` resolved inside the checkout `root`, and the setter options that confine
/// every read and write to the checkout: an absolute path, a `..` escape or a symlink
/// leaving the repository at any level is refused (a symlink inside it is followed, as
/// Flux's securejoin follows it).
pub fn setter_root(root: &Path, update_path: &str) -> Result<(PathBuf, TreeOptions), ObjectError> {
    let resolved = tagsmith_marker_setter::resolve_inside(root, update_path)
        .map_err(|e| ObjectError::from_coded(e.code(), &e))?;
    let confine = std::fs::canonicalize(root).map_err(|e| {
        ObjectError::new(ObjectCode::Io.as_str(), format!("{}: {e}", root.display()))
    })?;
    let options = TreeOptions {
        confine_to: Some(confine),
        ..TreeOptions::default()
    };
    Ok((resolved, options))
}

/// The automation's commit template: Flux's default, or its own, read with the data model
/// of its API version (v1beta1 and v1beta2 still render `.Updated`, v1 refuses it).
pub fn message_template(
    automation: &Automation,
) -> Result<MessageTemplate, tagsmith_git_commit::GitError> {
    match automation
        .message_template
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        None => Ok(MessageTemplate::flux_default()),
        Some(source) if automation.renders_updated() => MessageTemplate::parse_legacy(source),
        Some(source) => MessageTemplate::parse(source),
    }
}

/// The setter's diff names files relative to `update.path`; show them from the repo root.
fn prefix_diff(diff: &str, update_path: &str) -> String {
    diff.replace(
        "--- a/",
        &format!("--- a/{}", super::report::from_repo_root(update_path, "")),
    )
    .replace(
        "+++ b/",
        &format!("+++ b/{}", super::report::from_repo_root(update_path, "")),
    )
}

/// One record per change for the commit template: `.Changed.FileChanges` keys are relative
/// to `update.path`, as Flux's are.
fn change_records(result: &SetterResult) -> Vec<ChangeRecord> {
    result
        .changes()
        .map(|(file, object, change)| ChangeRecord {
            file: file.path.clone(),
            object: tagsmith_git_commit::ObjectIdentifier {
                api_version: object.object.api_version.clone().unwrap_or_default(),
                kind: object.object.kind.clone().unwrap_or_default(),
                namespace: object.object.namespace.clone().unwrap_or_default(),
                name: object.object.name.clone().unwrap_or_default(),
            },
            old_value: change.old_value.clone(),
            new_value: change.new_value.clone(),
            setter: change.setter.clone(),
        })
        .collect()
}

/// The push credentials of an automation: explicit ones, else its GitRepository's
/// `secretRef` (keys of a Flux git secret: `identity` + `known_hosts` [+ `password`], or
/// `username` + `password`), read from the secret store in the GitRepository's namespace.
pub fn git_auth(
    ctx: &RunContext,
    workspace: &Workspace,
    automation: &Automation,
    objects: &FluxObjects,
) -> Result<GitAuth, ObjectError> {
    if workspace.git_auth != GitAuth::None {
        return Ok(workspace.git_auth.clone());
    }
    let Some(git_repo) = objects.source_of(automation) else {
        return Ok(GitAuth::None);
    };
    let Some(secret) = &git_repo.secret_ref else {
        return Ok(GitAuth::None);
    };
    let read = |key: &str| {
        ctx.secrets.get(secret, key).map_err(|e| {
            git_repo
                .origin
                .error(ObjectCode::Secret.as_str(), "spec.secretRef", e.to_string())
        })
    };
    if let Some(identity) = read("identity")? {
        let known_hosts = read("known_hosts")?.ok_or_else(|| {
            git_repo.origin.error(
                ObjectCode::Secret.as_str(),
                "spec.secretRef",
                format!("secret {secret} has an identity but no known_hosts; refusing to connect without host key checking"),
            )
        })?;
        return Ok(GitAuth::SshKey {
            username: "git".into(),
            private_key: KeySource::InMemory(identity),
            passphrase: read("password")?,
            known_hosts: known_hosts.expose().to_string(),
        });
    }
    match (read("username")?, read("password")?) {
        (Some(username), Some(password)) => Ok(GitAuth::Basic {
            username: username.expose().trim().to_string(),
            password: tagsmith_secret::Secret::new(password.expose().trim()),
        }),
        _ => {
            tracing::warn!(automation = %automation.origin.key, secret = %secret, "the GitRepository's secret has neither identity nor username and password; pushing without credentials");
            Ok(GitAuth::None)
        }
    }
}

/// The OpenPGP key of `spec.git.commit.signingKey.secretRef` (keys `git.asc`, optional
/// `passphrase`), as in a Flux signing secret. Asked for but missing is an error: commits
/// are never silently unsigned.
pub fn signing_key(
    ctx: &RunContext,
    automation: &Automation,
) -> Result<Option<SigningKey>, ObjectError> {
    let Some(secret) = &automation.signing_key_secret else {
        return Ok(None);
    };
    let field = "spec.git.commit.signingKey.secretRef";
    let missing = |why: String| {
        automation
            .origin
            .error(ObjectCode::Secret.as_str(), field, why)
    };
    let armored = ctx
        .secrets
        .get(secret, "git.asc")
        .map_err(|e| missing(e.to_string()))?
        .ok_or_else(|| {
            missing(format!(
                "secret {secret} has no key git.asc (look at --secrets-dir: <dir>/{}/{}/git.asc)",
                secret.namespace(),
                secret.name()
            ))
        })?;
    let passphrase = ctx
        .secrets
        .get(secret, "passphrase")
        .map_err(|e| missing(e.to_string()))?
        .map(|p| tagsmith_secret::Secret::new(p.expose().trim_end_matches(['\r', '\n'])));
    SigningKey::from_armored(armored.expose(), passphrase)
        .map(Some)
        .map_err(|e| automation.origin.error(e.code(), field, e.to_string()))
}

/// A note when the work tree is on another branch than the automation's (its
/// `git.checkout.ref.branch`, or its GitRepository's `ref.branch`): tagsmith works on what
/// is checked out.
fn checkout_note(wanted: Option<&str>, current: Option<&str>) -> Option<String> {
    let (wanted, current) = (wanted?, current?);
    (wanted != current).then(|| {
        format!(
            "the automation's branch (spec.git.checkout.ref.branch or its GitRepository's spec.ref.branch) is {wanted:?} but the work tree is on {current:?}: the update is built on the remote's {wanted:?} in a temporary checkout, and the work tree is left as it is"
        )
    })
}

/// Stages 3 and 4 for one automation.
pub async fn update_automation(
    ctx: &RunContext,
    workspace: &Workspace,
    objects: &FluxObjects,
    automation: &Automation,
    selections: &Selections,
) -> AutomationReport {
    let mut report = AutomationReport {
        automation: automation.origin.key(),
        update_path: automation.update_path.clone(),
        ..AutomationReport::default()
    };
    if automation.suspend {
        report
            .notes
            .push("spec.suspend is true: skipped, as Flux skips a suspended automation".into());
        return report;
    }
    if let Err(error) = update(ctx, workspace, objects, automation, selections, &mut report).await {
        report.error = Some(error);
    }
    explain_unknown_policies(&mut report, selections, objects);
    report
}

/// A marker naming a policy that exists but failed or is suspended: say so instead of "not
/// given" (its own error says why).
fn explain_unknown_policies(
    report: &mut AutomationReport,
    selections: &Selections,
    objects: &FluxObjects,
) {
    for warning in report
        .result
        .warnings
        .iter_mut()
        .filter(|w| w.code == "unknown_policy")
    {
        let names = |key: &str| warning.message.contains(&format!("{key:?}"));
        let selected = selections.all().find(|(key, _)| names(&key.to_string()));
        let unreadable = objects
            .failures
            .iter()
            .filter(|f| f.kind == "ImagePolicy")
            .filter_map(|f| f.object.clone())
            .find(|key| names(key));
        warning.message = match (selected, unreadable) {
            (Some((key, s)), _) if s.report.suspended => {
                format!("marker names policy {key}, which is suspended; value left unchanged")
            }
            (Some((key, _)), _) => format!(
                "marker names policy {key}, which failed (see its error); value left unchanged"
            ),
            (None, Some(key)) => format!(
                "marker names policy {key}, which could not be read (see its error); value left unchanged"
            ),
            (None, None) => continue,
        };
    }
}

async fn update(
    ctx: &RunContext,
    workspace: &Workspace,
    objects: &FluxObjects,
    automation: &Automation,
    selections: &Selections,
    report: &mut AutomationReport,
) -> Result<(), ObjectError> {
    let policies = policies_for(automation, selections)?;
    let template = message_template(automation).map_err(|e| {
        automation
            .origin
            .error(e.code(), "spec.git.commit.messageTemplate", e.to_string())
    })?;
    // `.Updated.Images` of a v1beta1/v1beta2 automation: the latest image of each policy it
    // uses, as Flux up to 2.6 gave it.
    let updated: BTreeMap<String, String> = policies
        .iter()
        .map(|(key, image)| (key.to_string(), image.to_string()))
        .collect();
    let render = |result: &SetterResult| -> Result<String, ObjectError> {
        let mut data = TemplateData::new(
            automation.origin.namespace(),
            automation.origin.name(),
            &change_records(result),
            automation.message_template_values.clone(),
        );
        if automation.renders_updated() {
            data = data.with_updated(updated.clone());
        }
        template.render(&data).map_err(|e| {
            automation
                .origin
                .error(e.code(), "spec.git.commit.messageTemplate", e.to_string())
        })
    };
    let path_error = |e: ObjectError| {
        automation
            .origin
            .error(&e.code, "spec.update.path", e.message)
    };
    let (tree_root, tree_options) =
        setter_root(&workspace.root, &automation.update_path).map_err(path_error)?;
    let current = Repository::open(&workspace.root)
        .ok()
        .and_then(|r| r.current_branch().ok());
    report.notes.extend(checkout_note(
        objects.branch_of(automation),
        current.as_deref(),
    ));
    let setter_error =
        |e: tagsmith_marker_setter::SetterError| ObjectError::from_coded(e.code(), &e);
    if ctx.config.dry_run {
        let plan = plan_tree(&tree_root, &policies, &tree_options).map_err(setter_error)?;
        if !plan.result().is_empty() {
            report.message = Some(render(plan.result())?);
            report.diff = Some(prefix_diff(&plan.unified_diff(), &automation.update_path));
        }
        report.result = plan.result().clone();
        return Ok(());
    }
    let git_error = |e: tagsmith_git_commit::GitError| ObjectError::from_coded(e.code(), &e);
    let mut repo = Repository::open(&workspace.root)
        .map_err(git_error)?
        .with_auth(git_auth(ctx, workspace, automation, objects)?);
    if let Some(key) = signing_key(ctx, automation)? {
        tracing::debug!(fingerprint = %key.fingerprint(), "signing commits");
        repo = repo.with_signing_key(key);
    }
    let commit = CommitOptions {
        author: Signature {
            name: automation.author_name.clone(),
            email: automation.author_email.clone(),
        },
        committer: None,
    };
    if !ctx.config.push {
        // Commit locally in the user's checkout (--no-push).
        let mut last = SetterResult::default();
        let applied = apply_in(
            repo.workdir(),
            automation,
            &policies,
            &render,
            Some(&repo),
            &mut last,
        )
        .map_err(|e| ObjectError::new("apply", e.to_string()))?;
        if let Some(id) = repo
            .commit_paths(&applied.changed_files, &applied.message, &commit)
            .map_err(git_error)?
        {
            report.commit = Some(id);
            report.message = Some(applied.message);
        }
        report.result = last;
        return Ok(());
    }
    // The update is built on the automation's branch as the remote has it; when that is not
    // what the user has checked out, in a temporary checkout. A tag, commit, semver or name
    // checkout has no branch: the update is built on what was checked out (HEAD), as Flux
    // builds it.
    let base = match objects.checkout_of(automation) {
        Some(tagsmith_git_commit::CheckoutRef::Branch(branch)) => Some(branch),
        _ => None,
    };
    let base_name = base.clone().or_else(|| current.clone()).unwrap_or_default();
    let pull_requests = ctx.config.pull_request
        && automation
            .push_branch
            .as_deref()
            .is_some_and(|b| b != base_name);
    if ctx.config.pull_request && !pull_requests {
        report.notes.push(format!(
            "--pull-request: the automation pushes to its checkout branch {base_name:?} (set spec.git.push.branch to another branch), so there is no pull request to open"
        ));
    }
    // One push branch, or with --branch-per-policy one per policy
    // (`<push branch>/<namespace>/<name>`), each with its own pull request.
    let jobs: Vec<(Option<String>, Policies, Option<String>)> = match (
        &automation.push_branch,
        ctx.config.branch_per_policy && pull_requests,
    ) {
        (Some(branch), true) => policies
            .iter()
            .map(|(key, image)| {
                let one = Policies::from_map([(key.to_string(), image.to_string())])
                    .map_err(|e| ObjectError::from_coded(e.code(), &e))?;
                let per_policy = format!("{branch}/{}", key.to_string().replacen(':', "/", 1));
                Ok((Some(key.to_string()), one, Some(per_policy)))
            })
            .collect::<Result<_, ObjectError>>()?,
        _ => vec![(None, policies.clone(), automation.push_branch.clone())],
    };
    let remote_url = repo.remote_url(&ctx.config.remote).map_err(git_error)?;
    for (policy, subset, branch) in jobs {
        let target = PushTarget {
            branch: branch.clone(),
            base: base.clone(),
            refspec: automation.push_refspec.clone(),
            options: automation.push_options.clone(),
        };
        let mut last = SetterResult::default();
        let outcome = commit_and_push(
            &repo,
            &commit,
            &target,
            &ctx.config.remote,
            ctx.config.max_push_attempts,
            &mut |workdir: &Path| apply_in(workdir, automation, &subset, &render, None, &mut last),
        )
        .map_err(git_error)?;
        let (state, message) = record(report, outcome, policy.is_some());
        if pull_requests {
            if let (Some(branch), Some(state)) = (branch.as_deref(), state) {
                let update = super::pull_request::BranchUpdate {
                    branch,
                    base: &base_name,
                    state,
                    message: message.as_deref(),
                    result: &last,
                    policy: policy.as_deref(),
                };
                let pr = super::pull_request::reconcile_pull_request(
                    ctx,
                    &remote_url,
                    automation,
                    objects,
                    selections,
                    update,
                )
                .await?;
                report.pull_requests.push(pr);
            }
        }
        report.result.files.extend(last.files);
        report.result.warnings.extend(last.warnings);
    }
    Ok(())
}

/// Runs the setter for `policies` in `workdir` and writes its edits; what a commit of them
/// needs (files, message). With `local` (a commit in the user's checkout, no push), a file
/// holding edits of the user's is refused before anything is written: a whole file is
/// committed. (Pushing checks the whole work tree before `apply`, or works in a temporary
/// checkout that holds nothing of the user's.)
fn apply_in(
    workdir: &Path,
    automation: &Automation,
    policies: &Policies,
    render: &dyn Fn(&SetterResult) -> Result<String, ObjectError>,
    local: Option<&Repository>,
    last: &mut SetterResult,
) -> Result<ApplyOutcome, tagsmith_git_commit::ApplyError> {
    let (root, options) = setter_root(workdir, &automation.update_path).map_err(|e| e.message)?;
    let plan = plan_tree(&root, policies, &options)?;
    *last = plan.result().clone();
    if plan.result().is_empty() {
        return Ok(ApplyOutcome::default());
    }
    let message = render(plan.result()).map_err(|e| e.message)?;
    // The files as git names them: from the checkout's root to the resolved update path
    // (which may have passed through a symlink inside the repository).
    let base = options
        .confine_to
        .as_deref()
        .and_then(|checkout| root.strip_prefix(checkout).ok())
        .unwrap_or_else(|| Path::new(&automation.update_path))
        .to_path_buf();
    let changed_files: Vec<PathBuf> = plan
        .changed_paths()
        .into_iter()
        .map(|p| base.join(p))
        .collect();
    if let Some(repo) = local {
        let dirty = repo.uncommitted(&changed_files)?;
        if !dirty.is_empty() {
            let names: Vec<String> = dirty.iter().map(|p| p.display().to_string()).collect();
            return Err(format!(
                "{} ha{} uncommitted changes; commit or stash them first (the automation commits whole files)",
                names.join(", "),
                if names.len() == 1 { "s" } else { "ve" }
            )
            .into());
        }
    }
    plan.write()?;
    Ok(ApplyOutcome {
        changed_files,
        message,
    })
}

/// Records one push in the report: what became of the push branch (for its pull request)
/// and the commit message. With one branch per policy the commit fields stay per branch
/// (in the pull request entries and notes).
fn record(
    report: &mut AutomationReport,
    outcome: PushOutcome,
    per_policy: bool,
) -> (Option<PushBranch>, Option<String>) {
    let (state, message) = match outcome {
        PushOutcome::Pushed {
            commit,
            branch,
            attempts,
            message,
            forced,
        } => {
            if per_policy {
                report.notes.push(format!("pushed {commit} to {branch}"));
            } else {
                report.commit = Some(commit);
                report.pushed_branch = Some(branch);
                report.attempts = attempts;
                report.message = Some(message.clone());
            }
            let state = if forced {
                PushBranch::Rebuilt
            } else {
                PushBranch::Pushed
            };
            (Some(state), Some(message))
        }
        PushOutcome::UpToDate {
            commit,
            branch,
            message,
        } => {
            report.notes.push(format!(
                "{branch} already holds this update ({commit}); nothing pushed"
            ));
            if !per_policy {
                report.commit = Some(commit);
                report.message = Some(message.clone());
            }
            (Some(PushBranch::UpToDate), Some(message))
        }
        PushOutcome::NoChange { push_branch } => {
            let state = match push_branch {
                BranchState::IsBase => None,
                BranchState::Absent => Some(PushBranch::Absent),
                BranchState::Merged { .. } => Some(PushBranch::Merged),
                BranchState::Ahead { tip } => {
                    report.notes.push(format!(
                        "the push branch holds an earlier update ({tip}) that the base branch no longer needs"
                    ));
                    Some(PushBranch::Stale)
                }
            };
            (state, None)
        }
    };
    if !per_policy && report.push_branch.is_none() {
        report.push_branch = state;
    }
    (state, message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn update_paths_never_leave_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("apps/real")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("apps/link")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("top")).unwrap();
        std::os::unix::fs::symlink(root.join("apps/real"), root.join("inside")).unwrap();
        let real = std::fs::canonicalize(root.join("apps/real")).unwrap();
        assert_eq!(setter_root(&root, "./apps/real").unwrap().0, real);
        // A symlink that stays inside the repository is followed, as Flux follows it.
        assert_eq!(setter_root(&root, "inside").unwrap().0, real);
        for (hostile, code) in [
            ("apps/link", "symlink_outside_root"),
            ("./top", "symlink_outside_root"),
            ("top/x", "symlink_outside_root"),
            ("/etc", "absolute_path"),
            ("apps/../..", "path_escapes_root"),
            ("nope", "path_not_found"),
        ] {
            let err = setter_root(&root, hostile).unwrap_err();
            assert_eq!(err.code, code, "{hostile}: {err:?}");
        }
    }

    #[test]
    fn checkout_note_only_when_the_branches_differ() {
        assert_eq!(checkout_note(Some("main"), Some("main")), None);
        assert_eq!(checkout_note(Some("main"), None), None);
        let note = checkout_note(Some("main"), Some("dev")).unwrap();
        assert!(
            note.contains("\"main\"") && note.contains("\"dev\""),
            "{note}"
        );
    }
}
