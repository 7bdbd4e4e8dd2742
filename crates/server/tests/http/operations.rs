//! What operators rely on: health, request ids, metrics, and the protective layers (timeout,
//! load shedding, gzip, CORS, body limit), each with its setting changed from the default.

use std::io::Read;
use std::time::Duration;

use crate::common::{TestApp, error_messages};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(health_is_live_and_ready_until_the_database_goes);

async fn health_is_live_and_ready_until_the_database_goes(app: TestApp) {
    for path in ["/health/ready", "/health"] {
        let (status, body) = app.get(path, None).await;
        assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")), "{path}");
        assert_eq!(body["checks"]["database"]["status"], "ok");
    }
    app.store.close().await;
    for path in ["/health/ready", "/health"] {
        let (status, body) = app.get(path, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["checks"]["database"]["status"], "unavailable");
    }
    assert_eq!(app.get("/health/live", None).await, (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let app = TestApp::sqlite().await;
    let url = format!("{}/api/tags", app.base);
    let response = app.client.get(&url).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let again = app.client.get(&url).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), generated);
    let echoed = app.client.get(&url).header("x-request-id", "trace-me-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-123");
    // Errors carry it too.
    let missing = app.client.get(format!("{}/nope", app.base)).header("x-request-id", "e-1").send().await.unwrap();
    assert_eq!(
        (missing.status(), &missing.headers()["x-request-id"]),
        (StatusCode::NOT_FOUND, &"e-1".parse().unwrap())
    );
}

/// The value of the first sample line starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_logins() {
    let app = TestApp::sqlite().await;
    let token = app.register("jake").await;
    let slug = app.article(&token, "Counted", &[]).await;
    for _ in 0..3 {
        app.get(&format!("/api/articles/{slug}"), None).await;
    }
    app.get("/api/articles/no-such-article", None).await;
    app.get("/not/a/route", None).await;
    let login = |password: &'static str| {
        app.post("/api/users/login", None, json!({"user": {"email": "jake@example.com", "password": password}}))
    };
    login("password123").await;
    login("wrong password").await;
    login("wrong password").await;

    let response = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().contains("openmetrics-text"));
    let text = response.text().await.unwrap();
    let get_article = r#"conduit_http_requests_total{method="GET",route="/api/articles/{slug}""#;
    assert_eq!(sample(&text, &format!(r#"{get_article},status="200"}}"#)), Some(3.0), "{text}");
    assert_eq!(sample(&text, &format!(r#"{get_article},status="404"}}"#)), Some(1.0));
    assert_eq!(sample(&text, r#"conduit_http_requests_total{method="GET",route="unmatched",status="404"}"#), Some(1.0));
    assert_eq!(
        sample(
            &text,
            r#"conduit_http_request_duration_seconds_count{method="GET",route="/api/articles/{slug}",status="200"}"#
        ),
        Some(3.0)
    );
    // The histogram's last bucket holds every observation of its series: the three reads.
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("conduit_http_request_duration_seconds_bucket{"))
        .filter(|l| {
            [r#"method="GET""#, r#"route="/api/articles/{slug}""#, r#"status="200""#, r#"le="+Inf""#]
                .iter()
                .all(|label| l.contains(label))
        })
        .collect();
    assert_eq!(buckets.len(), 1, "one +Inf bucket for the route's 200s: {buckets:?}\n{text}");
    assert_eq!(buckets[0].rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()), Some(3.0), "{}", buckets[0]);
    assert_eq!(sample(&text, r#"conduit_logins_total{result="success"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"conduit_logins_total{result="failure"}"#), Some(2.0));
    // The scrape itself is the one request in flight.
    assert_eq!(sample(&text, "conduit_http_requests_in_flight"), Some(1.0));
    assert!(sample(&text, r#"conduit_db_pool_connections{pool="read"}"#).is_some_and(|n| n >= 1.0), "{text}");
    assert!(sample(&text, r#"conduit_db_pool_idle_connections{pool="write"}"#).is_some());
}

#[tokio::test]
async fn slow_requests_time_out_with_503() {
    // Every Argon2 login takes far longer than a millisecond.
    let app = TestApp::sqlite_with(|c| c.http.request_timeout = Duration::from_millis(1)).await;
    let response = app
        .client
        .post(format!("{}/api/users", app.base))
        .json(&json!({"user": {"username": "slow", "email": "slow@example.com", "password": "password123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_messages(&body, "server"), ["request timed out"]);
}

#[tokio::test]
async fn load_beyond_the_concurrency_limit_is_shed_with_503() {
    let app = TestApp::sqlite_with(|c| c.http.max_concurrency = 2).await;
    let attempts = (0..12).map(|i| {
        app.client
            .post(format!("{}/api/users", app.base))
            .json(&json!({"user": {"username": format!("u{i}"), "email": format!("u{i}@example.com"), "password": "password123"}}))
            .send()
    });
    let responses = futures::future::join_all(attempts).await;
    let mut shed = 0;
    for response in responses {
        let response = response.unwrap();
        match response.status() {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert_eq!(response.headers()["retry-after"], "1");
                let body: Value = response.json().await.unwrap();
                assert_eq!(error_messages(&body, "server"), ["too many requests at once, retry shortly"]);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(shed >= 1, "12 concurrent registrations past a limit of 2 must shed some");
    // Once the burst is over, requests are served again.
    assert_eq!(app.get("/api/tags", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn responses_are_gzipped_when_the_client_accepts_it() {
    let app = TestApp::sqlite().await;
    let token = app.register("jake").await;
    for i in 0..5 {
        app.article(&token, &format!("Compressible article number {i}"), &["gzip"]).await;
    }
    let plain = app.client.get(format!("{}/api/articles", app.base)).send().await.unwrap();
    assert!(!plain.headers().contains_key("content-encoding"));
    let plain: Value = plain.json().await.unwrap();

    let gzipped =
        app.client.get(format!("{}/api/articles", app.base)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let bytes = gzipped.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
    assert!(bytes.len() < text.len());
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), plain);

    // Switched off, it answers plainly whatever the client accepts.
    let off = TestApp::sqlite_with(|c| c.http.gzip = false).await;
    let response = off
        .client
        .get(format!("{}/api/openapi.json", off.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!response.headers().contains_key("content-encoding"));
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::sqlite_with(|c| c.http.allowed_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/articles", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    assert!(allowed.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));

    let simple =
        app.client.get(format!("{}/api/tags", app.base)).header("origin", "https://app.example").send().await.unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://app.example");
    // With no origins configured, no CORS headers are sent at all.
    let closed = TestApp::sqlite().await;
    let response = closed
        .client
        .get(format!("{}/api/tags", closed.base))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the request itself is served");
    assert!(!response.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn body_limit_follows_its_setting() {
    let app = TestApp::sqlite_with(|c| c.http.body_limit = 2_000).await;
    let token = app.register("jake").await;
    let article = |size: usize| json!({"article": {"title": "T", "description": "d", "body": "x".repeat(size)}});
    let (status, body) = app.post("/api/articles", Some(&token), article(3_000)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_messages(&body, "body"), ["is too large for this server"]);
    assert_eq!(app.post("/api/articles", Some(&token), article(1_000)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn the_cached_tag_list_follows_every_article_write_at_once() {
    let app = TestApp::sqlite().await;
    let token = app.register("jake").await;
    let tags = || async { app.get("/api/tags", None).await.1["tags"].clone() };
    assert_eq!(tags().await, json!([]));
    let slug = app.article(&token, "Tagged", &["first"]).await;
    assert_eq!(tags().await, json!(["first"]));
    let path = format!("/api/articles/{slug}");
    assert_eq!(app.put(&path, Some(&token), json!({"article": {"tagList": ["second"]}})).await.0, StatusCode::OK);
    assert_eq!(tags().await, json!(["second"]));
    assert_eq!(app.delete(&path, Some(&token)).await.0, StatusCode::NO_CONTENT);
    assert_eq!(tags().await, json!([]));
}
