//! The forge client against a real Gitea on loopback (`make setup-tools` builds it; without
//! it each test prints one `skipped:` line, and fails under `TAGSMITH_REQUIRE_REAL=1`).

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use tagsmith_forge::{
    close_pull_request_if_open, connect, ensure_pull_request, CloseOutcome, Forge, ForgeConfig,
    ForgeKind, PrField, PrOutcome, PullRequestSpec, RepoId, Secret,
};
use tagsmith_testkit::gitea::Gitea;

const HEAD: &str = "tagsmith/image-updates";
const BASE: &str = "main";

/// Gitea with a repository that has the bot's branch pushed.
fn setup(name: &str) -> Option<(Gitea, String)> {
    let gitea = Gitea::start()?;
    let repo = gitea.create_repo(name);
    gitea.push_branch(&repo, HEAD, "app.yaml", "image: nginx:1.27.1\n");
    Some((gitea, repo))
}

fn client(gitea: &Gitea, token: &str) -> Box<dyn Forge> {
    let config =
        ForgeConfig::new(ForgeKind::Gitea, Secret::new(token)).with_api_url(gitea.api_url());
    connect(&config).unwrap()
}

fn spec(gitea: &Gitea, repo: &str, title: &str, body: &str) -> PullRequestSpec {
    PullRequestSpec {
        // The remote as the automation has it, credentials and all.
        repo: RepoId::from_remote(&gitea.git_url(repo)).unwrap(),
        head: HEAD.into(),
        base: BASE.into(),
        title: title.into(),
        body: body.into(),
        labels: Vec::new(),
        reviewers: Vec::new(),
    }
}

fn open_pulls(gitea: &Gitea, repo: &str) -> Vec<Value> {
    let (status, body) = gitea.api("GET", &format!("/repos/{repo}/pulls?state=open"), None);
    assert_eq!(status, 200, "{body}");
    body.as_array().unwrap().clone()
}

fn pull(gitea: &Gitea, repo: &str, number: u64) -> Value {
    let (status, body) = gitea.api("GET", &format!("/repos/{repo}/pulls/{number}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn label_names(pr: &Value) -> Vec<String> {
    let mut names: Vec<String> = pr["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn opens_a_pull_request_from_the_pushed_branch() {
    let Some((gitea, repo)) = setup("open") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let outcome = ensure_pull_request(
        &*forge,
        &spec(&gitea, &repo, "Update nginx to 1.27.1", "One change."),
    )
    .await
    .unwrap();
    let PrOutcome::Opened { number, url } = outcome else {
        panic!("expected Opened, got {outcome:?}");
    };
    assert_eq!(url, format!("{}/{repo}/pulls/{number}", gitea.url));
    let pr = pull(&gitea, &repo, number);
    assert_eq!(pr["title"], "Update nginx to 1.27.1");
    assert_eq!(pr["body"], "One change.");
    assert_eq!(pr["head"]["ref"], HEAD);
    assert_eq!(pr["base"]["ref"], BASE);
    assert_eq!(pr["state"], "open");
    assert_eq!(pr["user"]["login"], tagsmith_testkit::gitea::ADMIN);
}

#[tokio::test]
async fn new_title_and_body_update_the_open_pull_request_instead_of_opening_another() {
    let Some((gitea, repo)) = setup("update") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let first = ensure_pull_request(&*forge, &spec(&gitea, &repo, "Update nginx", "Old body."))
        .await
        .unwrap();
    let second = ensure_pull_request(
        &*forge,
        &spec(&gitea, &repo, "Update nginx and redis", "New body."),
    )
    .await
    .unwrap();
    assert_eq!(
        second,
        PrOutcome::Updated {
            number: first.number(),
            url: first.url().to_string(),
            changed: vec![PrField::Title, PrField::Body],
        }
    );
    let open = open_pulls(&gitea, &repo);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["title"], "Update nginx and redis");
    assert_eq!(open[0]["body"], "New body.");
}

#[tokio::test]
async fn rerun_with_the_same_content_is_unchanged_and_opens_no_duplicate() {
    let Some((gitea, repo)) = setup("rerun") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let body =
        "| File | Old | New |\n| --- | --- | --- |\n| `app.yaml:1` | `1.27.0` | `1.27.1` |\n";
    let spec = spec(&gitea, &repo, "Update nginx", body);
    let first = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert!(matches!(first, PrOutcome::Opened { .. }), "{first:?}");
    // A fresh client, as the next run has.
    let forge = client(&gitea, &gitea.token);
    let again = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert_eq!(
        again,
        PrOutcome::Unchanged {
            number: first.number(),
            url: first.url().to_string()
        }
    );
    assert_eq!(open_pulls(&gitea, &repo).len(), 1);
}

#[tokio::test]
async fn close_comments_then_closes_and_a_second_close_finds_nothing() {
    let Some((gitea, repo)) = setup("close") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let spec = spec(&gitea, &repo, "Update nginx", "Body.");
    let opened = ensure_pull_request(&*forge, &spec).await.unwrap();
    let comment = "The branch no longer differs from main: closing.";
    let closed = close_pull_request_if_open(&*forge, &spec.repo, HEAD, BASE, comment)
        .await
        .unwrap();
    assert_eq!(
        closed,
        Some(CloseOutcome::Closed {
            number: opened.number(),
            url: opened.url().to_string()
        })
    );
    assert_eq!(pull(&gitea, &repo, opened.number())["state"], "closed");
    let (status, comments) = gitea.api(
        "GET",
        &format!("/repos/{repo}/issues/{}/comments", opened.number()),
        None,
    );
    assert_eq!(status, 200);
    let bodies: Vec<&str> = comments
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, [comment]);
    let again = close_pull_request_if_open(&*forge, &spec.repo, HEAD, BASE, comment)
        .await
        .unwrap();
    assert_eq!(again, None);
}

#[tokio::test]
async fn after_closing_the_next_ensure_opens_a_new_pull_request() {
    let Some((gitea, repo)) = setup("reopen") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let spec = spec(&gitea, &repo, "Update nginx", "Body.");
    let first = ensure_pull_request(&*forge, &spec).await.unwrap();
    close_pull_request_if_open(&*forge, &spec.repo, HEAD, BASE, "")
        .await
        .unwrap();
    let second = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert!(matches!(second, PrOutcome::Opened { .. }), "{second:?}");
    assert_ne!(second.number(), first.number());
    assert_eq!(open_pulls(&gitea, &repo).len(), 1);
}

#[tokio::test]
async fn labels_are_applied_on_opening_and_missing_ones_added_on_update() {
    let Some((gitea, repo)) = setup("labels") else {
        return;
    };
    gitea.create_label(&repo, "automated");
    gitea.create_label(&repo, "images");
    let forge = client(&gitea, &gitea.token);
    let mut spec = spec(&gitea, &repo, "Update nginx", "Body.");
    spec.labels = vec!["automated".into()];
    let opened = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert_eq!(
        label_names(&pull(&gitea, &repo, opened.number())),
        ["automated"]
    );
    spec.labels = vec!["automated".into(), "images".into()];
    let updated = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert_eq!(
        updated,
        PrOutcome::Updated {
            number: opened.number(),
            url: opened.url().to_string(),
            changed: vec![PrField::Labels],
        }
    );
    assert_eq!(
        label_names(&pull(&gitea, &repo, opened.number())),
        ["automated", "images"]
    );
    let again = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert!(matches!(again, PrOutcome::Unchanged { .. }), "{again:?}");
}

#[tokio::test]
async fn a_label_the_repository_lacks_is_named_in_the_error() {
    let Some((gitea, repo)) = setup("nolabel") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let mut spec = spec(&gitea, &repo, "Update nginx", "Body.");
    spec.labels = vec!["no-such-label".into()];
    let err = ensure_pull_request(&*forge, &spec).await.unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.code(), "unknown_labels", "{err}");
    let text = err.to_string();
    assert!(text.contains("\"no-such-label\""), "{text}");
    assert!(text.contains(&repo), "{text}");
}

#[tokio::test]
async fn bad_token_gives_one_line_401_naming_forge_repository_and_branches() {
    let Some((gitea, repo)) = setup("badtoken") else {
        return;
    };
    let bad = "0123456789abcdef0123456789abcdef01234567";
    let forge = client(&gitea, bad);
    let err = ensure_pull_request(&*forge, &spec(&gitea, &repo, "t", "b"))
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.code(), "unauthorized", "{err}");
    assert_eq!(err.status(), Some(401));
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.starts_with("Gitea repository "), "{text}");
    assert!(text.contains(&format!("127.0.0.1/{repo}")), "{text}");
    assert!(text.contains(&format!("from {HEAD} to {BASE}")), "{text}");
    assert!(!text.contains(bad), "{text}");
    assert!(!format!("{err:?}").contains(bad));
}

#[tokio::test]
async fn missing_repository_gives_one_line_404_naming_forge_repository_and_branches() {
    let Some((gitea, _repo)) = setup("present") else {
        return;
    };
    let forge = client(&gitea, &gitea.token);
    let missing = format!("{}/does-not-exist", tagsmith_testkit::gitea::ADMIN);
    let err = ensure_pull_request(&*forge, &spec(&gitea, &missing, "t", "b"))
        .await
        .unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.code(), "not_found", "{err}");
    let text = err.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.starts_with("Gitea repository "), "{text}");
    assert!(text.contains(&missing), "{text}");
    assert!(text.contains(&format!("from {HEAD} to {BASE}")), "{text}");
    assert!(text.contains("404"), "{text}");
}

#[tokio::test]
async fn a_pull_request_someone_else_opened_is_neither_rewritten_nor_closed() {
    let Some((gitea, repo)) = setup("foreign") else {
        return;
    };
    let alice = gitea.create_user("alice");
    gitea.add_collaborator(&repo, "alice");
    let (status, body) = gitea.request(
        "POST",
        &format!("/api/v1/repos/{repo}/pulls"),
        Some(&json!({"head": HEAD, "base": BASE, "title": "Alice's title", "body": "Mine."})),
        Some(&alice),
    );
    assert_eq!(status, 201, "{body}");
    let number = body["number"].as_u64().unwrap();

    let forge = client(&gitea, &gitea.token);
    let spec = spec(&gitea, &repo, "Update nginx", "Bot body.");
    let outcome = ensure_pull_request(&*forge, &spec).await.unwrap();
    assert_eq!(
        outcome,
        PrOutcome::NotOurs {
            number,
            url: format!("{}/{repo}/pulls/{number}", gitea.url),
            author: "alice".into()
        }
    );
    let closed = close_pull_request_if_open(&*forge, &spec.repo, HEAD, BASE, "closing")
        .await
        .unwrap();
    assert!(
        matches!(closed, Some(CloseOutcome::NotOurs { .. })),
        "{closed:?}"
    );
    let open = open_pulls(&gitea, &repo);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["title"], "Alice's title");
    assert_eq!(open[0]["body"], "Mine.");
}

#[tokio::test]
async fn opening_with_no_changes_between_the_branches_is_refused_with_the_forges_reason() {
    let Some(gitea) = Gitea::start() else {
        return;
    };
    let repo = gitea.create_repo("same");
    let forge = client(&gitea, &gitea.token);
    let mut spec = spec(&gitea, &repo, "t", "b");
    // The head is main itself: nothing to review.
    spec.head = BASE.into();
    let err = ensure_pull_request(&*forge, &spec).await.unwrap_err();
    eprintln!("{err}");
    assert_eq!(err.code(), "unprocessable", "{err}");
    assert_eq!(err.status(), Some(422));
    let text = err.to_string();
    assert!(text.contains("from main to main"), "{text}");
    // Gitea's own reason, quoted.
    assert!(
        text.contains("no changes between the head and the base"),
        "{text}"
    );
}

#[tokio::test]
async fn reviewers_are_requested_when_opening() {
    let Some((gitea, repo)) = setup("reviewers") else {
        return;
    };
    gitea.create_user("bob");
    gitea.add_collaborator(&repo, "bob");
    let forge = client(&gitea, &gitea.token);
    let mut spec = spec(&gitea, &repo, "Update nginx", "Body.");
    spec.reviewers = vec!["bob".into()];
    let opened = ensure_pull_request(&*forge, &spec).await.unwrap();
    let pr = pull(&gitea, &repo, opened.number());
    let reviewers: Vec<&str> = pr["requested_reviewers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(reviewers, ["bob"]);
}
