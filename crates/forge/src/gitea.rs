//! Gitea (and Forgejo), API v1.

use crate::config::{ForgeConfig, ForgeKind};
use crate::error::{ErrorContext, ForgeError};
use crate::github_like::{self, pr_action, split_reviewers, Label, RepoPath, User};
use crate::http::{Api, Reply};
use crate::pr::{NewPullRequest, PrState, PullRequest, PullRequestUpdate};
use crate::repo::RepoId;
use crate::Forge;
use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// Gitea's page size cap (`[api] MAX_RESPONSE_ITEMS`, 50 by default).
const PAGE_SIZE: &str = "50";

/// A Gitea client (`Authorization: token ...`).
pub struct GiteaForge {
    api: Api,
}

#[derive(Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    name: String,
    #[serde(default)]
    repo_id: i64,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    state: String,
    #[serde(default)]
    merged: bool,
    user: Option<User>,
    head: Branch,
    base: Branch,
    #[serde(default)]
    labels: Vec<Label>,
}

impl From<Pull> for PullRequest {
    fn from(p: Pull) -> Self {
        PullRequest {
            number: p.number,
            url: p.html_url,
            title: p.title,
            body: p.body.unwrap_or_default(),
            head: p.head.name,
            base: p.base.name,
            author: p.user.map(|u| u.login).unwrap_or_default(),
            labels: p.labels.into_iter().map(|l| l.name).collect(),
            state: if p.merged {
                PrState::Merged
            } else if p.state == "open" {
                PrState::Open
            } else {
                PrState::Closed
            },
        }
    }
}

impl GiteaForge {
    /// A client for `config` (its `api_url` is required: Gitea has no public instance).
    pub fn new(config: &ForgeConfig) -> Result<Self, ForgeError> {
        Ok(GiteaForge {
            api: Api::new(config, "token", "application/json", Vec::new())?,
        })
    }

    async fn set_labels(
        &self,
        repo: &RepoId,
        number: u64,
        labels: &[String],
        context: &ErrorContext,
    ) -> Result<(), ForgeError> {
        let url = RepoPath::on(&self.api, repo)?.issue_url(&self.api, number, "labels");
        // Gitea takes names here (ids elsewhere) and skips the ones it does not know
        // without a word: the answer, the issue's labels, tells which were skipped.
        let now: Vec<Label> = self
            .api
            .json(
                context,
                Method::POST,
                url,
                Some(&json!({ "labels": labels })),
            )
            .await?;
        let missing: Vec<String> = labels
            .iter()
            .filter(|want| !now.iter().any(|l| l.name.eq_ignore_ascii_case(want)))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ForgeError::UnknownLabels {
                context: context.clone(),
                labels: missing,
            })
        }
    }
}

#[async_trait]
impl Forge for GiteaForge {
    fn kind(&self) -> ForgeKind {
        ForgeKind::Gitea
    }

    async fn current_user(&self, repo: &RepoId) -> Result<Option<String>, ForgeError> {
        self.api
            .token_user(repo, |user| user.map(|u: User| Some(u.login)))
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
            format!("finding the open pull request from {head} to {base}"),
        );
        let path = RepoPath::on(&self.api, repo)?;
        let url = |page: &str| {
            path.url(
                &self.api,
                &["pulls"],
                &[
                    ("state", "open"),
                    ("base_branch", base),
                    ("limit", PAGE_SIZE),
                    ("page", page),
                ],
            )
        };
        // A pull request from a fork's branch of the same name is not ours.
        let ours = |p: &Pull| {
            p.state == "open"
                && p.head.name == head
                && p.base.name == base
                && p.head.repo_id == p.base.repo_id
        };
        let found = self
            .api
            .find_in_pages(&context, url, Reply::has_next_page, ours)
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
            format!("opening a pull request from {} to {}", new.head, new.base),
        );
        let path = RepoPath::on(&self.api, repo)?;
        let (users, teams) = split_reviewers(&new.reviewers);
        let mut body = json!({
            "head": new.head,
            "base": new.base,
            "title": new.title,
            "body": new.body,
        });
        if !users.is_empty() {
            body["reviewers"] = json!(users);
        }
        if !teams.is_empty() {
            body["team_reviewers"] = json!(teams);
        }
        let url = path.url(&self.api, &["pulls"], &[]);
        let pull: Pull = self
            .api
            .json(&context, Method::POST, url, Some(&body))
            .await?;
        let mut pr = PullRequest::from(pull);
        if !new.labels.is_empty() {
            let context = self.api.context(repo, pr_action("labelling the new", &pr));
            self.set_labels(repo, pr.number, &new.labels, &context)
                .await?;
            pr.labels.extend(new.labels.iter().cloned());
        }
        Ok(pr)
    }

    async fn update_pull_request(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        update: &PullRequestUpdate,
    ) -> Result<PullRequest, ForgeError> {
        github_like::update_pull_request::<Pull>(&self.api, repo, pr, update).await
    }

    async fn add_labels(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        let context = self.api.context(repo, pr_action("labelling", pr));
        self.set_labels(repo, pr.number, labels, &context).await
    }

    async fn comment(&self, repo: &RepoId, pr: &PullRequest, body: &str) -> Result<(), ForgeError> {
        github_like::comment(&self.api, repo, pr, body).await
    }

    async fn close_pull_request(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        comment: Option<&str>,
    ) -> Result<PullRequest, ForgeError> {
        github_like::close_pull_request::<Pull>(&self.api, repo, pr, comment).await
    }
}
