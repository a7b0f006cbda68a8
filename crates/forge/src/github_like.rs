//! What Gitea's API v1 shares with GitHub's REST v3. Gitea took GitHub's paths, bodies and
//! answers for these calls (`repos/{owner}/{name}/...`, a pull request's comments and
//! labels through its issue, edits and closing by `PATCH`), so they are written once here.
//! What differs stays in `gitea.rs` and `github.rs`: the listing query and the fork check,
//! how labels and reviewers are given, and how a merged pull request is marked.

use crate::config::ForgeKind;
use crate::error::ForgeError;
use crate::http::Api;
use crate::pr::{PullRequest, PullRequestUpdate};
use crate::repo::RepoId;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

/// A user (`GET /user`, a pull request's author).
#[derive(Deserialize)]
pub(crate) struct User {
    pub(crate) login: String,
}

/// A label, by name.
#[derive(Deserialize)]
pub(crate) struct Label {
    pub(crate) name: String,
}

/// A repository on one instance: `owner/name`.
pub(crate) struct RepoPath {
    pub(crate) owner: String,
    pub(crate) name: String,
}

impl RepoPath {
    /// `repo` on `api`'s instance, a sub-path install's folders removed.
    pub(crate) fn on(api: &Api, repo: &RepoId) -> Result<Self, ForgeError> {
        let (owner, name) = owner_and_name(api.kind, repo, &api.site_prefix())?;
        Ok(RepoPath { owner, name })
    }

    /// `repos/{owner}/{name}/{tail...}` with `query`.
    pub(crate) fn url(&self, api: &Api, tail: &[&str], query: &[(&str, &str)]) -> Url {
        let mut segments = vec!["repos", self.owner.as_str(), self.name.as_str()];
        segments.extend_from_slice(tail);
        api.url(&segments, query)
    }

    /// `repos/{owner}/{name}/pulls/{number}`.
    pub(crate) fn pull_url(&self, api: &Api, number: u64) -> Url {
        self.url(api, &["pulls", &number.to_string()], &[])
    }

    /// `repos/{owner}/{name}/issues/{number}/{what}`: a pull request's comments and labels
    /// are its issue's.
    pub(crate) fn issue_url(&self, api: &Api, number: u64, what: &str) -> Url {
        self.url(api, &["issues", &number.to_string(), what], &[])
    }
}

/// `owner/name` of a GitHub or Gitea repository: exactly two segments once a sub-path
/// prefix is removed.
pub(crate) fn owner_and_name(
    kind: ForgeKind,
    repo: &RepoId,
    prefix: &str,
) -> Result<(String, String), ForgeError> {
    let repo = repo.without_prefix(prefix);
    if repo.owner().contains('/') {
        return Err(ForgeError::InvalidRemote {
            remote: repo.to_string(),
            reason: format!(
                "{kind} repositories are owner/name, and {} has more folders (for an instance under a sub-path, give its address with that path)",
                repo.path()
            ),
        });
    }
    Ok((repo.owner().to_string(), repo.name().to_string()))
}

/// `org/team` reviewers are teams, plain names are users.
pub(crate) fn split_reviewers(reviewers: &[String]) -> (Vec<&str>, Vec<&str>) {
    let mut users = Vec::new();
    let mut teams = Vec::new();
    for r in reviewers {
        match r.split_once('/') {
            Some((_, team)) => teams.push(team),
            None => users.push(r.as_str()),
        }
    }
    (users, teams)
}

pub(crate) fn pr_action(verb: &str, pr: &PullRequest) -> String {
    format!(
        "{verb} pull request #{} ({} -> {})",
        pr.number, pr.head, pr.base
    )
}

/// Changes the title and/or description of `pr`; `P` is the forge's pull request answer.
pub(crate) async fn update_pull_request<P>(
    api: &Api,
    repo: &RepoId,
    pr: &PullRequest,
    update: &PullRequestUpdate,
) -> Result<PullRequest, ForgeError>
where
    P: DeserializeOwned + Into<PullRequest>,
{
    let context = api.context(repo, pr_action("updating", pr));
    let path = RepoPath::on(api, repo)?;
    let mut body = json!({});
    if let Some(title) = &update.title {
        body["title"] = json!(title);
    }
    if let Some(text) = &update.body {
        body["body"] = json!(text);
    }
    let url = path.pull_url(api, pr.number);
    let pull: P = api.json(&context, Method::PATCH, url, Some(&body)).await?;
    Ok(pull.into())
}

/// Comments on `pr`.
pub(crate) async fn comment(
    api: &Api,
    repo: &RepoId,
    pr: &PullRequest,
    body: &str,
) -> Result<(), ForgeError> {
    let context = api.context(repo, pr_action("commenting on", pr));
    let url = RepoPath::on(api, repo)?.issue_url(api, pr.number, "comments");
    api.send(&context, Method::POST, url, Some(&json!({ "body": body })))
        .await?;
    Ok(())
}

/// Closes `pr` without merging, after commenting `comment` if given; `P` is the forge's
/// pull request answer.
pub(crate) async fn close_pull_request<P>(
    api: &Api,
    repo: &RepoId,
    pr: &PullRequest,
    comment_first: Option<&str>,
) -> Result<PullRequest, ForgeError>
where
    P: DeserializeOwned + Into<PullRequest>,
{
    if let Some(text) = comment_first {
        comment(api, repo, pr, text).await?;
    }
    let context = api.context(repo, pr_action("closing", pr));
    let url = RepoPath::on(api, repo)?.pull_url(api, pr.number);
    let pull: P = api
        .json(
            &context,
            Method::PATCH,
            url,
            Some(&json!({ "state": "closed" })),
        )
        .await?;
    Ok(pull.into())
}
