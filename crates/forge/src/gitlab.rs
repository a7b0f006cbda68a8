//! GitLab, REST v4: merge requests.

use crate::config::{ForgeConfig, ForgeKind};
use crate::error::{ErrorContext, ForgeError};
use crate::http::{Api, Reply};
use crate::pr::{NewPullRequest, PrState, PullRequest, PullRequestUpdate};
use crate::repo::RepoId;
use crate::Forge;
use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// GitLab's largest page.
const PAGE_SIZE: &str = "100";

/// A GitLab client (`Authorization: Bearer ...`, which takes personal, project and group
/// access tokens and OAuth tokens alike).
pub struct GitLabForge {
    api: Api,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    username: String,
}

#[derive(Deserialize)]
struct Author {
    username: String,
}

#[derive(Deserialize)]
struct MergeRequest {
    iid: u64,
    #[serde(default)]
    web_url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: Option<String>,
    state: String,
    author: Option<Author>,
    source_branch: String,
    target_branch: String,
    #[serde(default)]
    source_project_id: u64,
    #[serde(default)]
    target_project_id: u64,
    #[serde(default)]
    labels: Vec<String>,
}

impl From<MergeRequest> for PullRequest {
    fn from(m: MergeRequest) -> Self {
        PullRequest {
            number: m.iid,
            url: m.web_url,
            title: m.title,
            body: m.description.unwrap_or_default(),
            head: m.source_branch,
            base: m.target_branch,
            author: m.author.map(|a| a.username).unwrap_or_default(),
            labels: m.labels,
            state: match m.state.as_str() {
                "opened" => PrState::Open,
                "merged" => PrState::Merged,
                _ => PrState::Closed,
            },
        }
    }
}

impl GitLabForge {
    /// A client for `config` (`api_url` `None`: gitlab.com).
    pub fn new(config: &ForgeConfig) -> Result<Self, ForgeError> {
        Ok(GitLabForge {
            api: Api::new(config, "Bearer", "application/json", Vec::new())?,
        })
    }

    /// The project's path, `group/subgroup/repo`, which the API takes URL-encoded as the
    /// project id (one path segment: `group%2Fsubgroup%2Frepo`).
    fn project(&self, repo: &RepoId) -> String {
        repo.without_prefix(&self.api.site_prefix())
            .path()
            .to_string()
    }

    fn mr_url(&self, repo: &RepoId, iid: u64, tail: &[&str]) -> reqwest::Url {
        let project = self.project(repo);
        let iid = iid.to_string();
        let mut segments = vec!["projects", project.as_str(), "merge_requests", &iid];
        segments.extend_from_slice(tail);
        self.api.url(&segments, &[])
    }

    /// User names to ids: GitLab asks reviewers by id.
    async fn reviewer_ids(
        &self,
        context: &ErrorContext,
        reviewers: &[String],
    ) -> Result<Vec<u64>, ForgeError> {
        let mut ids = Vec::new();
        let mut unknown = Vec::new();
        for name in reviewers {
            if name.contains('/') {
                // Groups cannot be asked to review through the API; say so by name.
                unknown.push(name.clone());
                continue;
            }
            let url = self.api.url(&["users"], &[("username", name)]);
            let users: Vec<User> = self.api.json(context, Method::GET, url, None).await?;
            match users.iter().find(|u| u.username.eq_ignore_ascii_case(name)) {
                Some(user) => ids.push(user.id),
                None => unknown.push(name.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(ids)
        } else {
            Err(ForgeError::UnknownReviewers {
                context: context.clone(),
                reviewers: unknown,
            })
        }
    }
}

fn mr_action(verb: &str, pr: &PullRequest) -> String {
    format!(
        "{verb} merge request !{} ({} -> {})",
        pr.number, pr.head, pr.base
    )
}

/// Whether more pages follow: GitLab says so in `Link` or in `X-Next-Page`.
fn more_pages(reply: &Reply) -> bool {
    let next_by_header = reply
        .headers
        .get("x-next-page")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    reply.has_next_page() || next_by_header
}

/// GitLab takes labels as one comma-separated string, so a comma cannot be in a name.
fn label_list(context: &ErrorContext, labels: &[String]) -> Result<String, ForgeError> {
    if let Some(bad) = labels.iter().find(|l| l.contains(',')) {
        return Err(ForgeError::Config {
            message: format!("{context}: GitLab label names cannot hold a comma: {bad:?}"),
        });
    }
    Ok(labels.join(","))
}

#[async_trait]
impl Forge for GitLabForge {
    fn kind(&self) -> ForgeKind {
        ForgeKind::GitLab
    }

    async fn current_user(&self, repo: &RepoId) -> Result<Option<String>, ForgeError> {
        self.api
            .token_user(repo, |user| user.map(|u: User| Some(u.username)))
            .await
    }

    async fn find_open_pull_request(
        &self,
        repo: &RepoId,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        let context = self.api.context(
            repo,
            format!("finding the open merge request from {head} to {base}"),
        );
        let project = self.project(repo);
        let url = |page: &str| {
            self.api.url(
                &["projects", &project, "merge_requests"],
                &[
                    ("state", "opened"),
                    ("source_branch", head),
                    ("target_branch", base),
                    ("per_page", PAGE_SIZE),
                    ("page", page),
                ],
            )
        };
        // From a fork, source and target project differ: not the bot's branch.
        let ours = |m: &MergeRequest| {
            m.state == "opened"
                && m.source_branch == head
                && m.target_branch == base
                && m.source_project_id == m.target_project_id
        };
        let found = self
            .api
            .find_in_pages(&context, url, more_pages, ours)
            .await?;
        Ok(found.map(PullRequest::from))
    }

    async fn open_pull_request(
        &self,
        repo: &RepoId,
        new: &NewPullRequest,
    ) -> Result<PullRequest, ForgeError> {
        let context = self.api.context(
            repo,
            format!("opening a merge request from {} to {}", new.head, new.base),
        );
        let mut body = json!({
            "source_branch": new.head,
            "target_branch": new.base,
            "title": new.title,
            "description": new.body,
        });
        if !new.labels.is_empty() {
            // GitLab creates project labels that do not exist yet.
            body["labels"] = json!(label_list(&context, &new.labels)?);
        }
        if !new.reviewers.is_empty() {
            body["reviewer_ids"] = json!(self.reviewer_ids(&context, &new.reviewers).await?);
        }
        let project = self.project(repo);
        let url = self.api.url(&["projects", &project, "merge_requests"], &[]);
        let mr: MergeRequest = self
            .api
            .json(&context, Method::POST, url, Some(&body))
            .await?;
        Ok(mr.into())
    }

    async fn update_pull_request(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ForgeError> {
        let context = self.api.context(repo, mr_action("updating", pr));
        let mut body = json!({});
        if let Some(title) = &update.title {
            body["title"] = json!(title);
        }
        if let Some(text) = &update.body {
            body["description"] = json!(text);
        }
        let url = self.mr_url(repo, pr.number, &[]);
        let mr: MergeRequest = self
            .api
            .json(&context, Method::PUT, url, Some(&body))
            .await?;
        Ok(mr.into())
    }

    async fn add_labels(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        let context = self.api.context(repo, mr_action("labelling", pr));
        let body = json!({ "add_labels": label_list(&context, labels)? });
        let url = self.mr_url(repo, pr.number, &[]);
        self.api
            .send(&context, Method::PUT, url, Some(&body))
            .await?;
        Ok(())
    }

    async fn comment(&self, repo: &RepoId, pr: &PullRequest, body: &str) -> Result<(), ForgeError> {
        let context = self.api.context(repo, mr_action("commenting on", pr));
        let url = self.mr_url(repo, pr.number, &["notes"]);
        self.api
            .send(&context, Method::POST, url, Some(&json!({ "body": body })))
            .await?;
        Ok(())
    }

    async fn close_pull_request(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        comment: Option<&str>,
    ) -> Result<PullRequest, ForgeError> {
        if let Some(comment) = comment {
            self.comment(repo, pr, comment).await?;
        }
        let context = self.api.context(repo, mr_action("closing", pr));
        let url = self.mr_url(repo, pr.number, &[]);
        let mr: MergeRequest = self
            .api
            .json(
                &context,
                Method::PUT,
                url,
                Some(&json!({ "state_event": "close" })),
            )
            .await?;
        Ok(mr.into())
    }
}
