//! The GitLab client against GitLab's documented REST v4 merge request shapes, served by the
//! test kit's scripted loopback server (GitLab itself cannot be reached from the test
//! machines).

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::time::{Duration, UNIX_EPOCH};
use tagsmith_forge::{
    close_pull_request_if_open, connect, ensure_pull_request, CloseOutcome, Forge, ForgeConfig,
    ForgeError, ForgeKind, PrField, PrOutcome, PullRequestSpec, RepoId, Secret,
};
use tagsmith_testkit::http::{FaultServer, Reply};

const TOKEN: &str = "glpat-testtoken0123456789";
const HEAD: &str = "tagsmith/updates";
const PROJECT: &str = "/api/v4/projects/acme%2Fplatform%2Ffleet";

fn client(server: &FaultServer) -> Box<dyn Forge> {
    let config = ForgeConfig::new(ForgeKind::GitLab, Secret::new(TOKEN))
        .with_api_url(format!("http://{}", server.host));
    connect(&config).unwrap()
}

fn spec(title: &str, body: &str) -> PullRequestSpec {
    PullRequestSpec {
        // A project in a subgroup.
        repo: RepoId::from_remote("https://gitlab.com/acme/platform/fleet.git").unwrap(),
        head: HEAD.into(),
        base: "main".into(),
        title: title.into(),
        body: body.into(),
        labels: Vec::new(),
        reviewers: Vec::new(),
    }
}

/// A merge request as GitLab returns it.
fn mr(iid: u64, title: &str, description: &str, author: &str, source_project: u64) -> Value {
    json!({
        "id": 5000 + iid,
        "iid": iid,
        "project_id": 77,
        "title": title,
        "description": description,
        "state": "opened",
        "target_branch": "main",
        "source_branch": HEAD,
        "source_project_id": source_project,
        "target_project_id": 77,
        "author": {"id": 9, "username": author, "name": author},
        "labels": ["automated"],
        "draft": false,
        "web_url": format!("https://gitlab.com/acme/platform/fleet/-/merge_requests/{iid}"),
    })
}

fn json_reply(status: u16, value: &Value) -> Reply {
    Reply::json(status, &value.to_string())
}

fn lines(server: &FaultServer) -> Vec<(String, String)> {
    server
        .full_requests()
        .iter()
        .map(|r| {
            let mut parts = r.line.split_whitespace();
            (
                parts.next().unwrap_or_default().to_string(),
                parts.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn body(server: &FaultServer, index: usize) -> Value {
    serde_json::from_str(&server.full_requests()[index].body).unwrap()
}

#[tokio::test]
async fn opening_looks_up_reviewer_ids_and_sends_labels_as_one_list() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([])),
        1 => json_reply(
            200,
            &json!([{"id": 42, "username": "alice", "name": "Alice"}]),
        ),
        _ => json_reply(201, &mr(3, "Update images", "Body.", "tagsmith-bot", 77)),
    });
    let mut spec = spec("Update images", "Body.");
    spec.labels = vec!["automated".into(), "images".into()];
    spec.reviewers = vec!["alice".into()];
    let outcome = ensure_pull_request(&*client(&server), &spec).await.unwrap();
    assert_eq!(
        outcome,
        PrOutcome::Opened {
            number: 3,
            url: "https://gitlab.com/acme/platform/fleet/-/merge_requests/3".into()
        }
    );
    assert_eq!(
        lines(&server),
        [
            (
                "GET".into(),
                format!("{PROJECT}/merge_requests?state=opened&source_branch=tagsmith%2Fupdates&target_branch=main&per_page=100&page=1")
            ),
            ("GET".into(), "/api/v4/users?username=alice".into()),
            ("POST".into(), format!("{PROJECT}/merge_requests")),
        ]
    );
    assert_eq!(
        body(&server, 2),
        json!({
            "source_branch": HEAD,
            "target_branch": "main",
            "title": "Update images",
            "description": "Body.",
            "labels": "automated,images",
            "reviewer_ids": [42],
        })
    );
    for request in server.full_requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[tokio::test]
async fn the_search_follows_pages_skips_forks_and_updates_title_body_and_labels() {
    let server = FaultServer::start(10, |_, i| match i {
        // Page 1: a merge request from a fork's branch of the same name.
        0 => json_reply(200, &json!([mr(2, "Fork", "", "mallory", 1234)]))
            .header("x-next-page", "2")
            .header("x-page", "1"),
        1 => json_reply(200, &json!([mr(8, "Old", "Old.", "tagsmith-bot", 77)]))
            .header("x-next-page", "")
            .header("x-page", "2"),
        2 => json_reply(200, &json!({"id": 9, "username": "tagsmith-bot"})),
        _ => json_reply(200, &mr(8, "New", "New.", "tagsmith-bot", 77)),
    });
    let mut spec = spec("New", "New.");
    spec.labels = vec!["automated".into(), "images".into()];
    let outcome = ensure_pull_request(&*client(&server), &spec).await.unwrap();
    assert_eq!(
        outcome,
        PrOutcome::Updated {
            number: 8,
            url: "https://gitlab.com/acme/platform/fleet/-/merge_requests/8".into(),
            changed: vec![PrField::Title, PrField::Body, PrField::Labels],
        }
    );
    let lines = lines(&server);
    assert!(lines[1].1.ends_with("&page=2"), "{lines:?}");
    assert_eq!(lines[2], ("GET".into(), "/api/v4/user".into()));
    assert_eq!(
        lines[3],
        ("PUT".into(), format!("{PROJECT}/merge_requests/8"))
    );
    assert_eq!(
        body(&server, 3),
        json!({"title": "New", "description": "New."})
    );
    assert_eq!(
        lines[4],
        ("PUT".into(), format!("{PROJECT}/merge_requests/8"))
    );
    // Only the missing label, added: labels people put on are kept.
    assert_eq!(body(&server, 4), json!({"add_labels": "images"}));
}

#[tokio::test]
async fn a_merge_request_someone_else_opened_is_not_ours() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([mr(4, "Mine", "Mine.", "alice", 77)])),
        _ => json_reply(200, &json!({"id": 9, "username": "tagsmith-bot"})),
    });
    let outcome = ensure_pull_request(&*client(&server), &spec("Bot", "Bot."))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PrOutcome::NotOurs {
            number: 4,
            url: "https://gitlab.com/acme/platform/fleet/-/merge_requests/4".into(),
            author: "alice".into()
        }
    );
    assert_eq!(server.full_requests().len(), 2, "no write");
}

#[tokio::test]
async fn close_adds_a_note_then_sends_state_event_close() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([mr(6, "T", "B", "tagsmith-bot", 77)])),
        1 => json_reply(200, &json!({"id": 9, "username": "tagsmith-bot"})),
        2 => json_reply(201, &json!({"id": 1, "body": "No diff."})),
        _ => json_reply(200, &mr(6, "T", "B", "tagsmith-bot", 77)),
    });
    let repo = spec("T", "B").repo;
    let outcome = close_pull_request_if_open(&*client(&server), &repo, HEAD, "main", "No diff.")
        .await
        .unwrap();
    assert!(
        matches!(outcome, Some(CloseOutcome::Closed { number: 6, .. })),
        "{outcome:?}"
    );
    let lines = lines(&server);
    assert_eq!(
        lines[2],
        ("POST".into(), format!("{PROJECT}/merge_requests/6/notes"))
    );
    assert_eq!(body(&server, 2), json!({"body": "No diff."}));
    assert_eq!(
        lines[3],
        ("PUT".into(), format!("{PROJECT}/merge_requests/6"))
    );
    assert_eq!(body(&server, 3), json!({"state_event": "close"}));
}

#[tokio::test]
async fn rate_limit_429_reports_ratelimit_reset() {
    let server = FaultServer::start(5, |_, _| {
        Reply::json(429, "Retry later")
            .header("RateLimit-Limit", "600")
            .header("RateLimit-Remaining", "0")
            .header("RateLimit-Reset", "1700000000")
            .header("Retry-After", "30")
    });
    let err = ensure_pull_request(&*client(&server), &spec("T", "B"))
        .await
        .unwrap_err();
    let ForgeError::RateLimited {
        status, reset_at, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 429);
    assert_eq!(
        *reset_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    let text = err.to_string();
    assert!(
        text.starts_with("GitLab repository gitlab.com/acme/platform/fleet, finding the open merge request from tagsmith/updates to main:"),
        "{text}"
    );
    assert!(
        text.ends_with("it resets at 2023-11-14T22:13:20Z"),
        "{text}"
    );
}

#[tokio::test]
async fn a_conflicting_open_merge_request_is_found_after_409() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([])),
        1 => json_reply(
            409,
            &json!({"message": ["Another open merge request already exists for this source branch: !5"]}),
        ),
        2 => json_reply(200, &json!([mr(5, "T", "B", "tagsmith-bot", 77)])),
        _ => json_reply(200, &json!({"id": 9, "username": "tagsmith-bot"})),
    });
    let mut spec = spec("T", "B");
    spec.labels = vec!["automated".into()];
    let outcome = ensure_pull_request(&*client(&server), &spec).await.unwrap();
    assert!(
        matches!(outcome, PrOutcome::Unchanged { number: 5, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_unknown_reviewer_is_named_before_anything_is_opened() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([])),
        _ => json_reply(200, &json!([])),
    });
    let mut spec = spec("T", "B");
    spec.reviewers = vec!["nobody".into()];
    let err = ensure_pull_request(&*client(&server), &spec)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_reviewers");
    assert!(err.to_string().ends_with("no user \"nobody\""), "{err}");
    assert!(lines(&server).iter().all(|(m, _)| m == "GET"));
}

#[tokio::test]
async fn validation_errors_by_field_become_one_line() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([])),
        1 => json_reply(
            422,
            &json!({"message": {"target_branch": ["is invalid"], "title": ["can't be blank"]}}),
        ),
        _ => json_reply(200, &json!([])),
    });
    let err = ensure_pull_request(&*client(&server), &spec("", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unprocessable");
    assert!(
        err.to_string()
            .ends_with("HTTP 422: the forge refused the request (target_branch is invalid; title can't be blank)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_gitlab_under_a_sub_path_gets_the_prefix_removed_from_the_project() {
    let server = FaultServer::start(5, |_, _| json_reply(200, &json!([])));
    let config = ForgeConfig::new(ForgeKind::GitLab, Secret::new(TOKEN))
        .with_api_url(format!("http://{}/gitlab", server.host));
    let forge = connect(&config).unwrap();
    let repo = RepoId::from_remote("https://example.com/gitlab/acme/fleet.git").unwrap();
    let found = forge
        .find_open_pull_request(&repo, HEAD, "main")
        .await
        .unwrap();
    assert_eq!(found, None);
    assert!(
        lines(&server)[0]
            .1
            .starts_with("/gitlab/api/v4/projects/acme%2Ffleet/merge_requests?"),
        "{:?}",
        lines(&server)
    );
}
