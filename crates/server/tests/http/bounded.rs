//! Answers of bounded size and what one account may write: a page of comments ends at its text
//! budget whatever its `limit`; the export streams its pages; articles, comments and exports
//! are limited per account. (Control characters, which JSON writes six bytes each, are refused
//! in `hostile.rs`.)

use crate::common::{TestApp, error_messages, real_limits};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(a_page_of_comments_ends_at_its_text_budget, the_export_streams_everything_an_account_owns);

/// 1,000 comments of 64 Ki characters made one anonymous page of 78 MB; four of them at once
/// took the server from 37 MB to 403 MB. A page now ends after the comment that reaches 1 MiB
/// of text, and `nextCursor` goes on from there.
async fn a_page_of_comments_ends_at_its_text_budget(app: TestApp) {
    let token = app.register("talker").await;
    let slug = app.article(&token, "Long thread", &[]).await;
    // 40,000 characters of three bytes each: 120,000 bytes a comment, nine to a page.
    let long = "€".repeat(40_000);
    for i in 0..20 {
        let (status, body) = app
            .post(
                &format!("/api/articles/{slug}/comments"),
                Some(&token),
                json!({"comment": {"body": format!("{i}{long}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut seen = Vec::new();
    let mut path = format!("/api/articles/{slug}/comments?limit=1000");
    for page in 0.. {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.len() < 2 * 1024 * 1024, "page {page} is {} bytes", bytes.len());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let comments = body["comments"].as_array().unwrap();
        assert!(comments.len() <= 9, "page {page}: {} comments of 120,000 bytes", comments.len());
        seen.extend(comments.iter().map(|c| c["body"].as_str().unwrap().trim_end_matches('€').to_owned()));
        match body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/articles/{slug}/comments?limit=1000&cursor={cursor}"),
            None => break,
        }
        assert!(page < 5, "the pages go on for ever");
    }
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected, "every comment once, in order, across the pages");
}

/// The export is written a page at a time (chunked, no Content-Length), and holds everything:
/// more articles and comments than a page, long bodies that end pages early, favorites and
/// follows.
async fn the_export_streams_everything_an_account_owns(app: TestApp) {
    let token = app.register("writer").await;
    let other = app.register("other").await;
    let theirs = app.article(&other, "Theirs", &[]).await;
    let mut slugs = Vec::new();
    for i in 0..60 {
        slugs.push(app.article(&token, &format!("Mine {i}"), &["t"]).await);
    }
    // Two of these fill a page's 1 MiB: the third starts the next page.
    let long = "y".repeat(600_000);
    for i in 0..3 {
        let article = json!({"article": {"title": format!("Long {i}"), "description": "d", "body": long}});
        let (status, body) = app.post("/api/articles", Some(&token), article).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for i in 0..210 {
        let path = format!("/api/articles/{theirs}/comments");
        let (status, _) = app.post(&path, Some(&token), json!({"comment": {"body": format!("c{i}")}})).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    app.post(&format!("/api/articles/{theirs}/favorite"), Some(&token), json!({})).await;
    app.post("/api/profiles/other/follow", Some(&token), json!({})).await;

    let response = app
        .client
        .get(format!("{}/api/user/export", app.base))
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-length").is_none(), "streamed, not built whole");
    let export: Value = response.json().await.unwrap();
    let export = &export["export"];
    assert_eq!(export["user"]["username"], "writer");
    let articles = export["articles"].as_array().unwrap();
    assert_eq!(articles.len(), 63, "every article, across pages");
    assert_eq!(articles[0]["title"], "Long 2", "newest first");
    assert_eq!(articles[0]["body"].as_str().unwrap().len(), 600_000);
    assert_eq!(export["comments"].as_array().unwrap().len(), 210);
    assert_eq!(export["comments"][209]["body"], "c209", "oldest first");
    assert_eq!(export["favorites"], json!([theirs]));
    assert_eq!(export["follows"], json!(["other"]));

    // Gzipped, the stream ends whole too (it used to end short: the encoder polled the finished
    // stream once more, and it panicked).
    let response = app
        .client
        .get(format!("{}/api/user/export", app.base))
        .header("authorization", format!("Token {token}"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let gzipped = response.bytes().await.expect("the whole gzipped export");
    assert!(gzipped.len() > 1000);
}

/// 200 comments of 64 KiB were posted in 0.9 s by one free account. Each account may now
/// publish `CONDUIT_ARTICLES_PER_HOUR` articles (30), post `CONDUIT_COMMENTS_PER_MINUTE`
/// comments (10) and ask for `CONDUIT_EXPORTS_PER_HOUR` exports (10); another account is not
/// held back by it. (The tighter limits of new accounts are set out of the way here: they are
/// `moderation.rs`'s.)
async fn writing_is_limited_per_account(app: TestApp) {
    let token = app.register("spammer").await;
    let other = app.register("bystander").await;
    for i in 0..30 {
        let article = json!({"article": {"title": format!("Spam {i}"), "description": "d", "body": "b"}});
        let (status, body) = app.post("/api/articles", Some(&token), article).await;
        assert_eq!(status, StatusCode::CREATED, "article {i}: {body}");
    }
    let article = json!({"article": {"title": "One more", "description": "d", "body": "b"}});
    let (status, body) = app.post("/api/articles", Some(&token), article.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(error_messages(&body, "rate"), ["too many attempts"]);
    let (status, _) = app.post("/api/articles", Some(&other), article).await;
    assert_eq!(status, StatusCode::CREATED, "another account publishes");

    let slug = app.article(&other, "Target", &[]).await;
    let path = format!("/api/articles/{slug}/comments");
    for i in 0..10 {
        let (status, _) = app.post(&path, Some(&token), json!({"comment": {"body": format!("spam {i}")}})).await;
        assert_eq!(status, StatusCode::CREATED, "comment {i}");
    }
    let (status, _) = app.post(&path, Some(&token), json!({"comment": {"body": "one more"}})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = app.post(&path, Some(&other), json!({"comment": {"body": "a reply"}})).await;
    assert_eq!(status, StatusCode::CREATED, "another account comments");

    for i in 0..10 {
        assert_eq!(app.get("/api/user/export", Some(&token)).await.0, StatusCode::OK, "export {i}");
    }
    assert_eq!(app.get("/api/user/export", Some(&token)).await.0, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_is_limited_per_account_on_sqlite() {
    writing_is_limited_per_account(TestApp::sqlite_with(account_limits).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_is_limited_per_account_on_postgres() {
    writing_is_limited_per_account(TestApp::postgres_with(account_limits).await).await;
}

/// The real limits, but for those of new accounts.
fn account_limits(config: &mut conduit_server::config::Config) {
    real_limits(config);
    config.limits.new_account_articles = Some(1000);
    config.limits.new_account_comments = Some(1000);
}

/// Four clients that ask for a large export and stop reading held all four places among the
/// exports streaming at once for as long as their connections stayed open: hyper does not poll
/// a body it cannot write, so the stream never ended and every other export got 503. A timer
/// now gives the place back at `CONDUIT_EXPORT_TIMEOUT` (2 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_exports_give_their_places_back() {
    let app = TestApp::sqlite_with(|config| config.limits.export_timeout = Duration::from_secs(2)).await;
    let hoarder = app.register("hoarder").await;
    let other = app.register("other").await;
    // 40 articles of 900 KB: a 36 MB export, more than loopback's socket buffers hold.
    let body = "x".repeat(900_000);
    for i in 0..40 {
        let article = json!({"article": {"title": format!("Big {i}"), "description": "d", "body": body}});
        let (status, answer) = app.post("/api/articles", Some(&hoarder), article).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let request =
            format!("GET /api/user/export HTTP/1.1\r\nHost: {address}\r\nAuthorization: Token {hoarder}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await.unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        stalled.push(stream); // and never read again
    }
    let (status, body) = app.get("/api/user/export", Some(&other)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the four stalled exports hold every place: {body}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = app.get("/api/user/export", Some(&other)).await;
    assert_eq!(status, StatusCode::OK, "past the deadline the stalled exports gave their places back: {body}");
    assert_eq!(body["export"]["user"]["username"], "other");
    drop(stalled);
}
