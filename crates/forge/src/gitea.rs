//! Gitea (and Forgejo), API v1.

use crate::config::{ForgeConfig, ForgeKind};
use crate::error::{ErrorContext, ForgeError};
use crate::http::{Api, MAX_PAGES};
use crate::pr::{NewPullRequest, PrState, PullRequest, PullRequestUpdate};
use crate::repo::RepoId;
use crate::Forge;
use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;

/// Gitea's page size cap (`[api] MAX_RESPONSE_ITEMS`, 50 by default).
const PAGE_SIZE: &str = "50";

/// A Gitea client (`Authorization: token ...`).
pub struct GiteaForge {
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
            me: OnceCell::new(),
        })
    }

    fn context(&self, repo: &RepoId, action: String) -> ErrorContext {
        ErrorContext {
            forge: ForgeKind::Gitea,
            repo: repo.to_string(),
            action,
        }
    }

    /// `owner` and `name` on this instance (a sub-path install's folders removed).
    fn owner_name(&self, repo: &RepoId) -> Result<(String, String), ForgeError> {
        owner_and_name(ForgeKind::Gitea, repo, &self.api.site_prefix())
    }

    async fn set_labels(
        &self,
        repo: &RepoId,
        number: u64,
        labels: &[String],
        context: &ErrorContext,
    ) -> Result<(), ForgeError> {
        let (owner, name) = self.owner_name(repo)?;
        let url = self.api.url(
            &[
                "repos",
                &owner,
                &name,
                "issues",
                &number.to_string(),
                "labels",
            ],
            &[],
        );
        // Gitea takes names here (ids elsewhere) and skips the ones it does not know
        // without a word: the answer, the labels, tells which were skipped.
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

#[async_trait]
impl Forge for GiteaForge {
    fn kind(&self) -> ForgeKind {
        ForgeKind::Gitea
    }

    async fn current_user(&self, repo: &RepoId) -> Result<Option<String>, ForgeError> {
        let context = self.context(repo, "reading the user the token belongs to".into());
        self.me
            .get_or_try_init(|| async {
                let user: User = self
                    .api
                    .json(&context, Method::GET, self.api.url(&["user"], &[]), None)
                    .await?;
                Ok(Some(user.login))
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
        for page in 1..=MAX_PAGES {
            let page = page.to_string();
            let url = self.api.url(
                &["repos", &owner, &name, "pulls"],
                &[
                    ("state", "open"),
                    ("base_branch", base),
                    ("limit", PAGE_SIZE),
                    ("page", &page),
                ],
            );
            let reply = self.api.send(&context, Method::GET, url, None).await?;
            let pulls: Vec<Pull> = reply.json(&context)?;
            let count = pulls.len();
            // A pull request from a fork's branch of the same name is not ours.
            if let Some(found) = pulls.into_iter().find(|p| {
                p.state == "open"
                    && p.head.name == head
                    && p.base.name == base
                    && p.head.repo_id == p.base.repo_id
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
        let url = self.api.url(&["repos", &owner, &name, "pulls"], &[]);
        let pull: Pull = self
            .api
            .json(&context, Method::POST, url, Some(&body))
            .await?;
        let mut pr = PullRequest::from(pull);
        if !new.labels.is_empty() {
            let context = self.context(repo, pr_action("labelling the new", &pr));
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

    async fn add_labels(
        &self,
        repo: &RepoId,
        pr: &PullRequest,
        labels: &[String],
    ) -> Result<(), ForgeError> {
        let context = self.context(repo, pr_action("labelling", pr));
        self.set_labels(repo, pr.number, labels, &context).await
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
