//! The GitHub client against GitHub's documented REST v3 shapes, served by the test kit's
//! scripted loopback server (GitHub itself cannot be reached from the test machines): the
//! requests it sends (method, path, query, headers, JSON) and how it reads the answers.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tagsmith_forge::{
    close_pull_request_if_open, connect, ensure_pull_request, CloseOutcome, Forge, ForgeConfig,
    ForgeKind, PrField, PrOutcome, PullRequestSpec, RepoId, Secret,
};
use tagsmith_testkit::http::{FaultServer, Reply};

const TOKEN: &str = "ghp_testtoken0123456789";
const HEAD: &str = "tagsmith/updates";

fn client(server: &FaultServer) -> Box<dyn Forge> {
    client_with(server, |c| c)
}

fn client_with(server: &FaultServer, edit: impl Fn(ForgeConfig) -> ForgeConfig) -> Box<dyn Forge> {
    // An instance address: the client adds /api/v3, as for GitHub Enterprise Server.
    let config = ForgeConfig::new(ForgeKind::GitHub, Secret::new(TOKEN))
        .with_api_url(format!("http://{}", server.host));
    connect(&edit(config)).unwrap()
}

fn spec(title: &str, body: &str) -> PullRequestSpec {
    PullRequestSpec {
        repo: RepoId::from_remote("git@github.com:acme/fleet.git").unwrap(),
        head: HEAD.into(),
        base: "main".into(),
        title: title.into(),
        body: body.into(),
        labels: Vec::new(),
        reviewers: Vec::new(),
    }
}

/// A pull request as GitHub returns it (the fields the client reads, and a few more).
fn pull(number: u64, title: &str, body: &str, author: &str, head_repo: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/acme/fleet/pulls/{number}"),
        "id": 1000 + number,
        "number": number,
        "html_url": format!("https://github.com/acme/fleet/pull/{number}"),
        "state": "open",
        "locked": false,
        "title": title,
        "body": body,
        "user": {"login": author, "id": 1, "type": "User"},
        "labels": [],
        "merged_at": null,
        "draft": false,
        "head": {"label": format!("acme:{HEAD}"), "ref": HEAD, "sha": "a".repeat(40),
                 "repo": {"full_name": head_repo}},
        "base": {"label": "acme:main", "ref": "main", "sha": "b".repeat(40),
                 "repo": {"full_name": "acme/fleet"}},
    })
}

fn json_reply(status: u16, value: &Value) -> Reply {
    Reply::json(status, &value.to_string())
}

/// `(method, path and query)` of each request, in order.
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
async fn opening_sends_the_documented_calls_headers_and_json() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([])),
        1 => json_reply(
            201,
            &pull(7, "Update images", "Body.", "tagsmith-bot", "acme/fleet"),
        ),
        2 => json_reply(200, &json!([{"name": "automated"}, {"name": "images"}])),
        _ => json_reply(201, &json!({"number": 7})),
    });
    let mut spec = spec("Update images", "Body.");
    spec.labels = vec!["automated".into(), "images".into()];
    spec.reviewers = vec!["alice".into(), "acme/platform".into()];
    let outcome = ensure_pull_request(&*client(&server), &spec).await.unwrap();
    assert_eq!(
        outcome,
        PrOutcome::Opened {
            number: 7,
            url: "https://github.com/acme/fleet/pull/7".into()
        }
    );
    assert_eq!(
        lines(&server),
        [
            ("GET".into(), "/api/v3/repos/acme/fleet/pulls?state=open&head=acme%3Atagsmith%2Fupdates&base=main&per_page=100&page=1".into()),
            ("POST".into(), "/api/v3/repos/acme/fleet/pulls".into()),
            ("POST".into(), "/api/v3/repos/acme/fleet/issues/7/labels".into()),
            ("POST".into(), "/api/v3/repos/acme/fleet/pulls/7/requested_reviewers".into()),
        ]
    );
    assert_eq!(
        body(&server, 1),
        json!({"title": "Update images", "head": HEAD, "base": "main", "body": "Body."})
    );
    assert_eq!(body(&server, 2), json!({"labels": ["automated", "images"]}));
    assert_eq!(
        body(&server, 3),
        json!({"reviewers": ["alice"], "team_reviewers": ["platform"]})
    );
    for request in server.full_requests() {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        assert!(request
            .header("user-agent")
            .unwrap()
            .starts_with("tagsmith/"));
    }
}

#[tokio::test]
async fn the_search_follows_link_pages_skips_fork_branches_and_updates_the_match() {
    let server = FaultServer::start(10, move |_, i| {
        match i {
        // Page 1: the same branch name, from a fork. More pages follow.
        0 => json_reply(
            200,
            &json!([pull(3, "Fork", "", "mallory", "mallory/fleet")]),
        )
        .header(
            "Link",
            "<https://api.github.com/repositories/1/pulls?page=2>; rel=\"next\", <https://api.github.com/repositories/1/pulls?page=2>; rel=\"last\"",
        ),
        1 => json_reply(
            200,
            &json!([pull(9, "Old title", "Old body.", "tagsmith-bot", "acme/fleet")]),
        ),
        2 => json_reply(200, &json!({"login": "tagsmith-bot"})),
        _ => json_reply(200, &pull(9, "New title", "New body.", "tagsmith-bot", "acme/fleet")),
    }
    });
    let outcome = ensure_pull_request(&*client(&server), &spec("New title", "New body."))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PrOutcome::Updated {
            number: 9,
            url: "https://github.com/acme/fleet/pull/9".into(),
            changed: vec![PrField::Title, PrField::Body],
        }
    );
    let lines = lines(&server);
    assert!(lines[1].1.ends_with("&page=2"), "{lines:?}");
    assert_eq!(lines[2], ("GET".into(), "/api/v3/user".into()));
    assert_eq!(
        lines[3],
        ("PATCH".into(), "/api/v3/repos/acme/fleet/pulls/9".into())
    );
    assert_eq!(
        body(&server, 3),
        json!({"title": "New title", "body": "New body."})
    );
}

#[tokio::test]
async fn an_up_to_date_pull_request_gets_no_write() {
    let server = FaultServer::start(10, |_, i| match i {
        // GitHub may hand the body back with \r\n line ends.
        0 => json_reply(
            200,
            &json!([pull(
                4,
                "Title",
                "Line 1\r\nLine 2",
                "tagsmith-bot",
                "acme/fleet"
            )]),
        ),
        _ => json_reply(200, &json!({"login": "tagsmith-bot"})),
    });
    let outcome = ensure_pull_request(&*client(&server), &spec("Title", "Line 1\nLine 2\n"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, PrOutcome::Unchanged { number: 4, .. }),
        "{outcome:?}"
    );
    assert_eq!(server.full_requests().len(), 2);
}

#[tokio::test]
async fn a_refused_second_opening_finds_the_pull_request_that_won_the_race() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(200, &json!([])),
        1 => json_reply(
            422,
            &json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists for acme:tagsmith/updates."}]}),
        ),
        2 => json_reply(
            200,
            &json!([pull(12, "Title", "Body", "tagsmith-bot", "acme/fleet")]),
        ),
        _ => json_reply(200, &json!({"login": "tagsmith-bot"})),
    });
    let outcome = ensure_pull_request(&*client(&server), &spec("Title", "Body"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, PrOutcome::Unchanged { number: 12, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn an_app_token_that_cannot_read_the_user_still_updates_the_branch_pull_request() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(
            200,
            &json!([pull(5, "Old", "Old", "tagsmith[bot]", "acme/fleet")]),
        ),
        1 => json_reply(
            403,
            &json!({"message": "Resource not accessible by integration"}),
        ),
        _ => json_reply(200, &pull(5, "New", "Old", "tagsmith[bot]", "acme/fleet")),
    });
    let outcome = ensure_pull_request(&*client(&server), &spec("New", "Old"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, PrOutcome::Updated { number: 5, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn close_comments_then_sets_the_state_closed() {
    let server = FaultServer::start(10, |_, i| match i {
        0 => json_reply(
            200,
            &json!([pull(5, "T", "B", "tagsmith-bot", "acme/fleet")]),
        ),
        1 => json_reply(200, &json!({"login": "tagsmith-bot"})),
        2 => json_reply(201, &json!({"id": 1, "body": "closing"})),
        _ => json_reply(200, &pull(5, "T", "B", "tagsmith-bot", "acme/fleet")),
    });
    let repo = spec("T", "B").repo;
    let outcome = close_pull_request_if_open(&*client(&server), &repo, HEAD, "main", "No diff.")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Some(CloseOutcome::Closed {
            number: 5,
            url: "https://github.com/acme/fleet/pull/5".into()
        })
    );
    let lines = lines(&server);
    assert_eq!(
        lines[2],
        (
            "POST".into(),
            "/api/v3/repos/acme/fleet/issues/5/comments".into()
        )
    );
    assert_eq!(body(&server, 2), json!({"body": "No diff."}));
    assert_eq!(
        lines[3],
        ("PATCH".into(), "/api/v3/repos/acme/fleet/pulls/5".into())
    );
    assert_eq!(body(&server, 3), json!({"state": "closed"}));
}

#[tokio::test]
async fn spent_primary_rate_limit_403_reports_the_reset_time() {
    let server = FaultServer::start(5, |_, _| {
        json_reply(
            403,
            &json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        )
        .header("x-ratelimit-limit", "5000")
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", "1700000000")
    });
    let err = ensure_pull_request(&*client(&server), &spec("T", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limited", "{err}");
    let tagsmith_forge::ForgeError::RateLimited {
        status, reset_at, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 403);
    assert_eq!(
        *reset_at,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    assert_eq!(
        err.to_string(),
        "GitHub repository github.com/acme/fleet, finding the open pull request from tagsmith/updates to main: HTTP 403: rate limit reached; it resets at 2023-11-14T22:13:20Z"
    );
}

#[tokio::test]
async fn secondary_rate_limit_429_counts_retry_after_from_now() {
    let server = FaultServer::start(5, |_, _| {
        json_reply(
            429,
            &json!({"message": "You have exceeded a secondary rate limit."}),
        )
        .header("retry-after", "60")
    });
    let before = SystemTime::now();
    let err = ensure_pull_request(&*client(&server), &spec("T", "B"))
        .await
        .unwrap_err();
    let after = SystemTime::now();
    let tagsmith_forge::ForgeError::RateLimited {
        status, reset_at, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 429);
    let reset = reset_at.unwrap();
    assert!(reset >= before + Duration::from_secs(60) && reset <= after + Duration::from_secs(60));
}

#[tokio::test]
async fn forbidden_without_rate_limit_headers_quotes_github() {
    let server = FaultServer::start(5, |_, _| {
        json_reply(
            403,
            &json!({"message": "Resource not accessible by personal access token"}),
        )
    });
    let err = ensure_pull_request(&*client(&server), &spec("T", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "forbidden");
    assert!(
        err.to_string()
            .contains("(Resource not accessible by personal access token)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_token_echoed_by_the_server_is_redacted() {
    let server = FaultServer::start(5, |_, _| {
        json_reply(
            422,
            &json!({"message": format!("bad credentials Bearer {TOKEN}\nsecond line")}),
        )
    });
    let err = ensure_pull_request(&*client(&server), &spec("T", "B"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("Bearer <redacted> second line"), "{text}");
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[tokio::test]
async fn an_answer_over_the_size_bound_is_refused() {
    let server = FaultServer::start(5, |_, _| {
        Reply::json(200, &format!("[{}]", " ".repeat(8192)))
    });
    let forge = client_with(&server, |mut c| {
        c.max_response_bytes = 1024;
        c
    });
    let err = ensure_pull_request(&*forge, &spec("T", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_response");
    assert!(err.to_string().contains("larger than 1024 bytes"), "{err}");
}

#[tokio::test]
async fn a_server_that_does_not_answer_in_time_is_a_timeout() {
    let server = FaultServer::start(5, |_, _| {
        let mut reply = Reply::json(200, "[]");
        reply.delay = Duration::from_secs(3);
        reply
    });
    let forge = client_with(&server, |mut c| {
        c.timeout = Duration::from_millis(300);
        c
    });
    let err = ensure_pull_request(&*forge, &spec("T", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timeout", "{err}");
    assert!(err.to_string().contains("no answer within 300 ms"), "{err}");
}

#[tokio::test]
async fn a_body_that_is_not_the_documented_shape_is_an_invalid_response() {
    let server = FaultServer::start(5, |_, _| Reply::json(200, r#"{"not": "a list"}"#));
    let err = ensure_pull_request(&*client(&server), &spec("T", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_response", "{err}");
}

#[tokio::test]
async fn an_answer_without_a_length_is_cut_at_the_size_bound_while_reading() {
    // No Content-Length: the body runs until the connection closes, so only the read
    // loop can stop it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[",
            );
            for _ in 0..64 {
                if stream.write_all(&[b' '; 1024]).is_err() {
                    break;
                }
            }
        }
    });
    let config = ForgeConfig::new(ForgeKind::GitHub, Secret::new(TOKEN))
        .with_api_url(format!("http://{host}"));
    let forge = connect(&ForgeConfig {
        max_response_bytes: 4096,
        ..config
    })
    .unwrap();
    let err = ensure_pull_request(&*forge, &spec("T", "B"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_response", "{err}");
    assert!(err.to_string().contains("larger than 4096 bytes"), "{err}");
}
