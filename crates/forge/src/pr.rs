//! Pull requests as plain values, and the converging calls the bot makes.

use crate::error::ForgeError;
use crate::repo::RepoId;
use crate::Forge;

/// Whether a pull request is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    /// Open (GitLab: `opened`).
    Open,
    /// Closed without merging.
    Closed,
    /// Merged.
    Merged,
}

/// A pull request (GitLab: merge request) as the forge reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number in the repository (GitLab: the `iid`, `!3`).
    pub number: u64,
    /// The page a person opens.
    pub url: String,
    /// Title.
    pub title: String,
    /// Description (empty when the forge has none).
    pub body: String,
    /// The branch it merges from.
    pub head: String,
    /// The branch it merges into.
    pub base: String,
    /// The user who opened it.
    pub author: String,
    /// Its labels' names.
    pub labels: Vec<String>,
    /// Open, closed or merged.
    pub state: PrState,
}

/// A pull request to open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewPullRequest {
    /// The branch tagsmith pushed (Flux `spec.git.push.branch`).
    pub head: String,
    /// The branch it checked out (`spec.git.checkout.ref.branch`).
    pub base: String,
    /// Title.
    pub title: String,
    /// Description, Markdown.
    pub body: String,
    /// Labels to add by name.
    pub labels: Vec<String>,
    /// Reviewers by user name; `org/team` asks a team on GitHub and Gitea.
    pub reviewers: Vec<String>,
}

/// What to change on an open pull request; `None` keeps the field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullRequestUpdate {
    /// A new title.
    pub title: Option<String>,
    /// A new description.
    pub body: Option<String>,
}

/// The pull request tagsmith wants for `head` -> `base` in `repo`: [`ensure_pull_request`]
/// opens it, brings an open one up to date, or leaves it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestSpec {
    /// The repository (from the automation's git remote).
    pub repo: RepoId,
    /// The pushed branch.
    pub head: String,
    /// The branch to merge into.
    pub base: String,
    /// Title.
    pub title: String,
    /// Description, Markdown (see [`crate::render_body`]).
    pub body: String,
    /// Labels the pull request must carry; labels added by people are kept.
    pub labels: Vec<String>,
    /// Reviewers asked when the pull request is opened (not again on updates: a reviewer
    /// who stepped back stays back).
    pub reviewers: Vec<String>,
}

/// A field [`ensure_pull_request`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrField {
    /// The title.
    Title,
    /// The description.
    Body,
    /// Labels were added.
    Labels,
}

/// What [`ensure_pull_request`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrOutcome {
    /// No pull request was open for the branches: one was opened.
    Opened {
        /// Its number.
        number: u64,
        /// Its page.
        url: String,
    },
    /// The open one was brought up to date.
    Updated {
        /// Its number.
        number: u64,
        /// Its page.
        url: String,
        /// What changed.
        changed: Vec<PrField>,
    },
    /// The open one already said what it should.
    Unchanged {
        /// Its number.
        number: u64,
        /// Its page.
        url: String,
    },
    /// A pull request for the branches is open but someone else opened it: tagsmith does
    /// not rewrite a person's pull request, and does not open a second one.
    NotOurs {
        /// Its number.
        number: u64,
        /// Its page.
        url: String,
        /// Who opened it.
        author: String,
    },
}

impl PrOutcome {
    /// The pull request's number, whatever happened.
    pub fn number(&self) -> u64 {
        match self {
            PrOutcome::Opened { number, .. }
            | PrOutcome::Updated { number, .. }
            | PrOutcome::Unchanged { number, .. }
            | PrOutcome::NotOurs { number, .. } => *number,
        }
    }

    /// The pull request's page, whatever happened.
    pub fn url(&self) -> &str {
        match self {
            PrOutcome::Opened { url, .. }
            | PrOutcome::Updated { url, .. }
            | PrOutcome::Unchanged { url, .. }
            | PrOutcome::NotOurs { url, .. } => url,
        }
    }
}

/// What [`close_pull_request_if_open`] did with the open pull request it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Commented on and closed.
    Closed {
        /// Its number.
        number: u64,
        /// Its page.
        url: String,
    },
    /// Left open: someone else opened it.
    NotOurs {
        /// Its number.
        number: u64,
        /// Its page.
        url: String,
        /// Who opened it.
        author: String,
    },
}

/// Opens the pull request `spec` describes, or brings the open one for the same head and
/// base branch up to date (title, description, missing labels), so that a rerun never opens
/// a second one. A pull request someone else opened for the branches is left as it is
/// ([`PrOutcome::NotOurs`]). When two runs race and the forge refuses the second opening
/// (409/422), the one that won is found and updated.
pub async fn ensure_pull_request(
    forge: &dyn Forge,
    spec: &PullRequestSpec,
) -> Result<PrOutcome, ForgeError> {
    let existing = forge
        .find_open_pull_request(&spec.repo, &spec.head, &spec.base)
        .await?;
    let pr = match existing {
        Some(pr) => pr,
        None => {
            let new = NewPullRequest {
                head: spec.head.clone(),
                base: spec.base.clone(),
                title: spec.title.clone(),
                body: spec.body.clone(),
                labels: spec.labels.clone(),
                reviewers: spec.reviewers.clone(),
            };
            match forge.open_pull_request(&spec.repo, &new).await {
                Ok(pr) => {
                    return Ok(PrOutcome::Opened {
                        number: pr.number,
                        url: pr.url,
                    })
                }
                Err(err @ ForgeError::Unprocessable { .. }) => {
                    match forge
                        .find_open_pull_request(&spec.repo, &spec.head, &spec.base)
                        .await?
                    {
                        Some(pr) => pr,
                        None => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            }
        }
    };
    if let Some(author) = foreign_author(forge, &spec.repo, &pr).await? {
        return Ok(PrOutcome::NotOurs {
            number: pr.number,
            url: pr.url,
            author,
        });
    }
    let mut changed = Vec::new();
    let mut update = PullRequestUpdate::default();
    if pr.title.trim() != spec.title.trim() {
        update.title = Some(spec.title.clone());
        changed.push(PrField::Title);
    }
    if normalize_text(&pr.body) != normalize_text(&spec.body) {
        update.body = Some(spec.body.clone());
        changed.push(PrField::Body);
    }
    if update != PullRequestUpdate::default() {
        forge.update_pull_request(&spec.repo, &pr, &update).await?;
    }
    let missing: Vec<String> = spec
        .labels
        .iter()
        .filter(|want| !pr.labels.iter().any(|have| have.eq_ignore_ascii_case(want)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        forge.add_labels(&spec.repo, &pr, &missing).await?;
        changed.push(PrField::Labels);
    }
    Ok(if changed.is_empty() {
        PrOutcome::Unchanged {
            number: pr.number,
            url: pr.url,
        }
    } else {
        PrOutcome::Updated {
            number: pr.number,
            url: pr.url,
            changed,
        }
    })
}

/// Closes the open pull request for `head` -> `base` with `comment` (for when the pushed
/// branch no longer differs from its base). `None` when none is open; one someone else
/// opened is left open ([`CloseOutcome::NotOurs`]).
pub async fn close_pull_request_if_open(
    forge: &dyn Forge,
    repo: &RepoId,
    head: &str,
    base: &str,
    comment: &str,
) -> Result<Option<CloseOutcome>, ForgeError> {
    let Some(pr) = forge.find_open_pull_request(repo, head, base).await? else {
        return Ok(None);
    };
    if let Some(author) = foreign_author(forge, repo, &pr).await? {
        return Ok(Some(CloseOutcome::NotOurs {
            number: pr.number,
            url: pr.url,
            author,
        }));
    }
    let comment = (!comment.trim().is_empty()).then_some(comment);
    forge.close_pull_request(repo, &pr, comment).await?;
    Ok(Some(CloseOutcome::Closed {
        number: pr.number,
        url: pr.url,
    }))
}

/// The author of `pr` when it is not the token's user; `None` when it is ours, or when the
/// forge cannot say who the token is (a GitHub App token): then the head and base branch
/// are the bot's own and so is the pull request.
async fn foreign_author(
    forge: &dyn Forge,
    repo: &RepoId,
    pr: &PullRequest,
) -> Result<Option<String>, ForgeError> {
    let me = forge.current_user(repo).await?;
    Ok(match me {
        Some(me) if !me.eq_ignore_ascii_case(&pr.author) => Some(pr.author.clone()),
        _ => None,
    })
}

/// Text as forges store it: `\r\n` as `\n`, no trailing blanks at the end; so a body the
/// forge normalised is not rewritten on every run.
fn normalize_text(text: &str) -> String {
    text.replace("\r\n", "\n").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_differ_only_in_line_ends_are_equal() {
        assert_eq!(normalize_text("a\r\nb\n\n"), normalize_text("a\nb"));
        assert_ne!(normalize_text("a\nb"), normalize_text("a\nc"));
    }
}
