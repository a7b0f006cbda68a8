//! What a run reports: one entry per object, each with its own `error` (`{code, message}`)
//! when that object failed, plus the objects that could not be read at all.

use crate::crd::ObjectFailure;
use crate::error::ObjectError;
use crate::sources::ObjectsRead;
use serde::Serialize;
use tagsmith_image_policy_core::Explanation;
use tagsmith_marker_setter::SetterResult;

/// What happened to one ImageRepository.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryReport {
    /// `namespace:name`.
    pub repository: String,
    /// The cluster (root Flux Kustomization) whose object this is, when the tree holds
    /// several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The image.
    pub image: String,
    /// Tags after exclusions.
    pub tag_count: usize,
    /// The greatest tags, as Flux shows `status.lastScanResult.latestTags`.
    pub latest_tags: Vec<String>,
    /// The scan came from the cache (younger than `spec.interval`).
    pub cached: bool,
    /// The registry failed and an older cached scan was used: the policy may be out of date.
    pub stale: bool,
    /// When the tags were listed (seconds since the epoch).
    pub scanned_at: u64,
    /// Why the scan failed (with `stale`: why the cached scan is used).
    pub error: Option<ObjectError>,
}

/// What one ImagePolicy chose.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// `namespace:name`.
    pub policy: String,
    /// The cluster (root Flux Kustomization) whose object this is, when the tree holds
    /// several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The image.
    pub image: String,
    /// The chosen tag.
    pub latest_tag: Option<String>,
    /// The full reference written by `ns:name` markers.
    pub latest_image: Option<String>,
    /// Whether the tags behind this choice are stale.
    pub stale: bool,
    /// `spec.suspend`: no value is offered and its markers stay as they are (Flux would
    /// keep the last latest image in the policy's status, which a run outside the cluster
    /// does not have).
    pub suspended: bool,
    /// Why: counts and the best candidates.
    pub explanation: Option<Explanation>,
    /// Why there is no choice.
    pub error: Option<ObjectError>,
}

/// What one ImageUpdateAutomation did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationReport {
    /// `namespace:name`.
    pub automation: String,
    /// The cluster (root Flux Kustomization) whose object this is, when the tree holds
    /// several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `spec.update.path`.
    pub update_path: String,
    /// The setter's result (changes and warnings); file paths relative to `update_path`,
    /// as Flux's `.Changed.FileChanges` keys are.
    pub result: SetterResult,
    /// The commit message (made, or that would be made).
    pub message: Option<String>,
    /// The diff, in a dry run (paths from the repository root).
    pub diff: Option<String>,
    /// The commit made.
    pub commit: Option<String>,
    /// The branch pushed to.
    pub pushed_branch: Option<String>,
    /// Push attempts.
    pub attempts: u32,
    /// What became of a push branch other than the base branch (pull requests follow it).
    pub push_branch: Option<PushBranch>,
    /// The pull requests of its push branches (`--pull-request`), one per branch.
    pub pull_requests: Vec<PullRequestReport>,
    /// Parts of the spec tagsmith read but did not apply, and other remarks (never
    /// silently).
    pub notes: Vec<String>,
    /// Why the automation failed.
    pub error: Option<ObjectError>,
}

/// The push branch of an automation that pushes to another branch than it checks out, as
/// the run left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushBranch {
    /// The update was pushed on top of the branch (fast-forward).
    Pushed,
    /// The branch was rebuilt as the base tip plus this update (force, with a lease).
    Rebuilt,
    /// The branch already held this update on the current base.
    UpToDate,
    /// Nothing to update; the remote has no such branch.
    Absent,
    /// Nothing to update; the branch holds nothing the base lacks (merged).
    Merged,
    /// Nothing to update, but the branch holds an earlier update the base no longer needs.
    Stale,
}

/// What became of one push branch's pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestAction {
    /// One was opened.
    Opened,
    /// The open one was brought up to date (title, description, labels).
    Updated,
    /// The open one already said what it should.
    Unchanged,
    /// The branch no longer differs from its base: the open one was closed with a comment.
    Closed,
    /// One is open for the branches but someone else opened it: left alone.
    NotOurs,
    /// Nothing to open or close.
    None,
}

/// One push branch's pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestReport {
    /// The head branch.
    pub branch: String,
    /// The base branch.
    pub base: String,
    /// The policy of the branch, with one branch per policy.
    pub policy: Option<String>,
    /// What was done.
    pub action: PullRequestAction,
    /// Its number.
    pub number: Option<u64>,
    /// Its page.
    pub url: Option<String>,
}

/// The run's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Per ImageRepository.
    pub repositories: Vec<RepositoryReport>,
    /// Per ImagePolicy.
    pub policies: Vec<PolicyReport>,
    /// Per ImageUpdateAutomation.
    pub automations: Vec<AutomationReport>,
    /// Objects and files that could not be read; each failed alone.
    pub failures: Vec<ObjectFailure>,
    /// Warnings about what was read (each once, with a count when repeated).
    pub warnings: Vec<String>,
    /// Which files the objects were read from, and why.
    pub objects_read: ObjectsRead,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

impl RunReport {
    /// Whether any automation changed (or would change) a file.
    pub fn changed(&self) -> bool {
        self.automations.iter().any(|a| !a.result.files.is_empty())
    }

    /// Every object error of the run, with what it is about: unreadable objects, failed
    /// scans (stale ones included: the registry did fail), policies, automations.
    pub fn errors(&self) -> Vec<(String, &ObjectError)> {
        let failures = self.failures.iter().map(|f| {
            let what = match &f.object {
                Some(key) => format!("{} {key}", f.kind),
                None => f.kind.clone(),
            };
            (what, &f.error)
        });
        let repositories = self.repositories.iter().filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| (format!("ImageRepository {}", r.repository), e))
        });
        let policies = self.policies.iter().filter_map(|p| {
            p.error
                .as_ref()
                .map(|e| (format!("ImagePolicy {}", p.policy), e))
        });
        let automations = self.automations.iter().filter_map(|a| {
            a.error
                .as_ref()
                .map(|e| (format!("ImageUpdateAutomation {}", a.automation), e))
        });
        failures
            .chain(repositories)
            .chain(policies)
            .chain(automations)
            .collect()
    }

    /// Whether some object failed (the rest was still done): exit code 1.
    pub fn failed(&self) -> bool {
        !self.errors().is_empty()
    }
}

/// `relative` (a path the setter reports relative to `update_path`, as Flux's
/// `FileChanges` keys are) as people read it, from the repository root.
///
/// ```
/// use tagsmith::run::report::from_repo_root;
/// assert_eq!(from_repo_root("./apps/", "web/deploy.yaml"), "apps/web/deploy.yaml");
/// assert_eq!(from_repo_root(".", "deploy.yaml"), "deploy.yaml");
/// ```
pub fn from_repo_root(update_path: &str, relative: &str) -> String {
    let prefix = update_path.trim_start_matches("./").trim_matches('/');
    if prefix.is_empty() || prefix == "." {
        relative.to_string()
    } else {
        format!("{prefix}/{relative}")
    }
}

/// Folds repeated lines into one, with a count: `warning (x3)`.
pub fn fold_repeats(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for line in lines {
        match out.iter_mut().find(|(l, _)| *l == line) {
            Some((_, n)) => *n += 1,
            None => out.push((line, 1)),
        }
    }
    out.into_iter()
        .map(|(l, n)| if n == 1 { l } else { format!("{l} (x{n})") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_fold_into_one_line_with_a_count() {
        let lines = ["a", "b", "a", "a"].map(String::from);
        assert_eq!(fold_repeats(lines), ["a (x3)", "b"]);
    }
}
