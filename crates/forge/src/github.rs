//! GitHub and GitHub Enterprise Server, REST v3.

use crate::config::{ForgeConfig, ForgeKind};
use crate::error::ForgeError;
use crate::github_like::{self, pr_action, split_reviewers, Label, RepoPath, User};
use crate::http::{Api, Reply};
use crate::pr::{NewPullRequest, PrState, PullRequest, PullRequestUpdate};
use crate::repo::RepoId;
use crate::Forge;
use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// GitHub's largest page.
const PAGE_SIZE: &str = "100";

/// A GitHub client (`Authorization: Bearer ...`, API version 2022-11-28).
pub struct GitHubForge {
    api: Api,
}

#[derive(Deserialize)]
struct Repo {
    full_name: String,
}

#[derive(Deserialize)]
struct Branch {
    #[serde(rename = "ref")]
    name: String,
    #[serde(default)]
    repo: Option<Repo>,
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
    merged_at: Option<String>,
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
            state: if p.merged_at.is_some() {
                PrState::Merged
            } else if p.state == "open" {
                PrState::Open
            } else {
                PrState::Closed
            },
        }
    }
}

impl GitHubForge {
    /// A client for `config` (`api_url` `None`: api.github.com).
    pub fn new(config: &ForgeConfig) -> Result<Self, ForgeError> {
        Ok(GitHubForge {
            api: Api::new(
                config,
                "Bearer",
                "application/vnd.github+json",
                vec![("x-github-api-version", "2022-11-28")],
            )?,
        })
    }
}

#[async_trait]
impl Forge for GitHubForge {
    fn kind(&self) -> ForgeKind {
        ForgeKind::GitHub
    }

    /// `None` for tokens that cannot read `/user` (GitHub App installation tokens and
    /// Actions' `GITHUB_TOKEN` answer 403 there).
    async fn current_user(&self, repo: &RepoId) -> Result<Option<String>, ForgeError> {
        self.api
            .token_user(repo, |user| match user {
                Ok(User { login }) => Ok(Some(login)),
                Err(ForgeError::Forbidden { .. }) => Ok(None),
                Err(e) => Err(e),
            })
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
        // `head` filters by `owner:branch`: only branches of this repository, not forks.
        let head_filter = format!("{}:{head}", path.owner);
        let full_name = format!("{}/{}", path.owner, path.name);
        let url = |page: &str| {
            path.url(
                &self.api,
                &["pulls"],
                &[
                    ("state", "open"),
                    ("head", &head_filter),
                    ("base", base),
                    ("per_page", PAGE_SIZE),
                    ("page", page),
                ],
            )
        };
        let ours = |p: &Pull| {
            p.state == "open"
                && p.head.name == head
                && p.base.name == base
                && p.head
                    .repo
                    .as_ref()
                    .is_some_and(|r| r.full_name.eq_ignore_ascii_case(&full_name))
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
        let url = path.url(&self.api, &["pulls"], &[]);
        let body = json!({
            "title": new.title,
            "head": new.head,
            "base": new.base,
            "body": new.body,
        });
        let pull: Pull = self
            .api
            .json(&context, Method::POST, url, Some(&body))
            .await?;
        let mut pr = PullRequest::from(pull);
        // Labels and reviewers are not fields of a new pull request on GitHub.
        if !new.labels.is_empty() {
            self.add_labels(repo, &pr, &new.labels).await?;
            pr.labels.extend(new.labels.iter().cloned());
        }
        if !new.reviewers.is_empty() {
            let context = self
                .api
                .context(repo, pr_action("asking reviewers for", &pr));
            let (users, teams) = split_reviewers(&new.reviewers);
            let url = path.url(
                &self.api,
                &["pulls", &pr.number.to_string(), "requested_reviewers"],
                &[],
            );
            let body = json!({ "reviewers": users, "team_reviewers": teams });
            self.api
                .send(&context, Method::POST, url, Some(&body))
                .await?;
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

    /// GitHub creates a label that the repository does not have yet.
    async fn add_labels(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        let context = self.api.context(repo, pr_action("labelling", pr));
        let url = RepoPath::on(&self.api, repo)?.issue_url(&self.api, pr.number, "labels");
        self.api
            .send(
                &context,
                Method::POST,
                url,
                Some(&json!({ "labels": labels })),
            )
            .await?;
        Ok(())
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
