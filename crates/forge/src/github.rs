//! GitHub and GitHub Enterprise Server, REST v3.

use crate::config::{ForgeConfig, ForgeKind};
use crate::error::{ErrorContext, ForgeError};
use crate::gitea::{owner_and_name, pr_action, split_reviewers};
use crate::http::{Api, MAX_PAGES};
use crate::pr::{NewPullRequest, PrState, PullRequest, PullRequestUpdate};
use crate::repo::RepoId;
use crate::Forge;
use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;

/// GitHub's largest page.
const PAGE_SIZE: &str = "100";

/// A GitHub client (`Authorization: Bearer ...`, API version 2022-11-28).
pub struct GitHubForge {
    api: Api,
    me: OnceCell<Option<String>>,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Label {
    name: String,
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
            me: OnceCell::new(),
        })
    }

    fn context(&self, repo: &RepoId, action: String) -> ErrorContext {
        ErrorContext {
            forge: ForgeKind::GitHub,
            repo: repo.to_string(),
            action,
        }
    }

    fn owner_name(&self, repo: &RepoId) -> Result<(String, String), ForgeError> {
        owner_and_name(ForgeKind::GitHub, repo, &self.api.site_prefix())
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
        let context = self.context(repo, "reading the user the token belongs to".into());
        self.me
            .get_or_try_init(|| async {
                let url = self.api.url(&["user"], &[]);
                match self
                    .api
                    .json::<User>(&context, Method::GET, url, None)
                    .await
                {
                    Ok(user) => Ok(Some(user.login)),
                    Err(ForgeError::Forbidden { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
            .cloned()
    }

    async fn find_open_pull_request(
        &self,
        repo: &RepoId,
        head: &str,
        base: &str,
    ) -> Result<Option<PullRequest>, ForgeError> {
        let context = self.context(
            repo,
            format!("finding the open pull request from {head} to {base}"),
        );
        let (owner, name) = self.owner_name(repo)?;
        // `head` filters by `owner:branch`: only branches of this repository, not forks.
        let head_filter = format!("{owner}:{head}");
        let full_name = format!("{owner}/{name}");
        for page in 1..=MAX_PAGES {
            let page = page.to_string();
            let url = self.api.url(
                &["repos", &owner, &name, "pulls"],
                &[
                    ("state", "open"),
                    ("head", &head_filter),
                    ("base", base),
                    ("per_page", PAGE_SIZE),
                    ("page", &page),
                ],
            );
            let reply = self.api.send(&context, Method::GET, url, None).await?;
            let pulls: Vec<Pull> = reply.json(&context)?;
            let count = pulls.len();
            if let Some(found) = pulls.into_iter().find(|p| {
                p.state == "open"
                    && p.head.name == head
                    && p.base.name == base
                    && p.head
                        .repo
                        .as_ref()
                        .is_some_and(|r| r.full_name.eq_ignore_ascii_case(&full_name))
            }) {
                return Ok(Some(found.into()));
            }
            if count == 0 || !reply.has_next_page() {
                break;
            }
        }
        Ok(None)
    }

    async fn open_pull_request(
        &self,
        repo: &RepoId,
        new: &NewPullRequest,
    ) -> Result<PullRequest, ForgeError> {
        let context = self.context(
            repo,
            format!("opening a pull request from {} to {}", new.head, new.base),
        );
        let (owner, name) = self.owner_name(repo)?;
        let url = self.api.url(&["repos", &owner, &name, "pulls"], &[]);
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
            let context = self.context(repo, pr_action("asking reviewers for", &pr));
            let (users, teams) = split_reviewers(&new.reviewers);
            let url = self.api.url(
                &[
                    "repos",
                    &owner,
                    &name,
                    "pulls",
                    &pr.number.to_string(),
                    "requested_reviewers",
                ],
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
        let context = self.context(repo, pr_action("updating", pr));
        let (owner, name) = self.owner_name(repo)?;
        let mut body = json!({});
        if let Some(title) = &update.title {
            body["title"] = json!(title);
        }
        if let Some(text) = &update.body {
            body["body"] = json!(text);
        }
        let url = self.api.url(
            &["repos", &owner, &name, "pulls", &pr.number.to_string()],
            &[],
        );
        let pull: Pull = self
            .api
            .json(&context, Method::PATCH, url, Some(&body))
            .await?;
        Ok(pull.into())
    }

    /// GitHub creates a label that the repository does not have yet.
    async fn add_labels(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        let context = self.context(repo, pr_action("labelling", pr));
        let (owner, name) = self.owner_name(repo)?;
        let url = self.api.url(
            &[
                "repos",
                &owner,
                &name,
                "issues",
                &pr.number.to_string(),
                "labels",
            ],
            &[],
        );
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
        let context = self.context(repo, pr_action("commenting on", pr));
        let (owner, name) = self.owner_name(repo)?;
        let url = self.api.url(
            &[
                "repos",
                &owner,
                &name,
                "issues",
                &pr.number.to_string(),
                "comments",
            ],
            &[],
        );
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
        let context = self.context(repo, pr_action("closing", pr));
        let (owner, name) = self.owner_name(repo)?;
        let url = self.api.url(
            &["repos", &owner, &name, "pulls", &pr.number.to_string()],
            &[],
        );
        let pull: Pull = self
            .api
            .json(
                &context,
                Method::PATCH,
                url,
                Some(&json!({ "state": "closed" })),
            )
            .await?;
        Ok(pull.into())
    }
}
