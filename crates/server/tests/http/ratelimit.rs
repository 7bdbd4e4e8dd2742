//! Brute-force defence over HTTP, one request at a time: failed logins per account and address,
//! per account, per address; registrations per address; and who may claim another address with
//! X-Forwarded-For. (The same under parallel attack is in `attacks.rs`.)

use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestApp, error_messages, real_limits};
use conduit_server::config::Config;
use conduit_server::ops::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn behind_proxy(config: &mut Config) {
    real_limits(config);
    config.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

async fn login_from(
    app: &TestApp,
    ip: Option<&str>,
    email: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let mut request = app
        .client
        .post(format!("{}/api/users/login", app.base))
        .json(&json!({"user": {"email": email, "password": password}}));
    if let Some(ip) = ip {
        request = request.header("x-forwarded-for", ip);
    }
    let response = request.send().await.unwrap();
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (response.status(), retry, response.json().await.unwrap())
}

fn assert_limited((status, retry, body): (StatusCode, Option<String>, Value)) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let seconds: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    assert_eq!(error_messages(&body, "rate"), ["too many attempts"]);
}

#[tokio::test]
async fn ten_failed_logins_a_minute_then_429_even_with_the_right_password() {
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::sqlite_with_clock(clock.clone(), |_| {}).await;
    app.register("jake").await;
    for _ in 0..10 {
        assert_eq!(login_from(&app, None, "jake@example.com", "wrong password").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_limited(login_from(&app, None, "jake@example.com", "password123").await);
    // The window is a minute: a second before it ends the guesses still count, after it they
    // do not (on a clock the test moves, not by waiting).
    clock.advance(Duration::from_secs(59));
    assert_limited(login_from(&app, None, "jake@example.com", "password123").await);
    clock.advance(Duration::from_secs(1));
    assert_eq!(login_from(&app, None, "jake@example.com", "password123").await.0, StatusCode::OK);
    // The counter is per account and address: the same address may still log in to another.
    app.register("anna").await;
    assert_eq!(login_from(&app, None, "anna@example.com", "password123").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_account_is_limited_to_ten_times_that_over_all_addresses() {
    let app = TestApp::sqlite_with(behind_proxy).await;
    app.register("jake").await;
    app.register("anna").await;
    for i in 0..100 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(login_from(&app, Some(&ip), "jake@example.com", "wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_limited(login_from(&app, Some("203.0.113.50"), "jake@example.com", "password123").await);
    // Another account, from a fresh address, is unaffected.
    assert_eq!(login_from(&app, Some("203.0.113.51"), "anna@example.com", "password123").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_address_is_limited_to_ten_times_that_over_all_accounts() {
    let app = TestApp::sqlite_with(behind_proxy).await;
    app.register("jake").await;
    for i in 0..100 {
        let email = format!("guess{i}@example.com");
        assert_eq!(login_from(&app, Some("203.0.113.7"), &email, "wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_limited(login_from(&app, Some("203.0.113.7"), "jake@example.com", "password123").await);
    // The proxy passes on other clients, who are not limited.
    assert_eq!(login_from(&app, Some("203.0.113.8"), "jake@example.com", "password123").await.0, StatusCode::OK);
}

#[tokio::test]
async fn forwarded_addresses_from_untrusted_peers_are_ignored() {
    let app = TestApp::sqlite().await;
    for i in 0..10 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(login_from(&app, Some(&ip), "x@example.com", "wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    // Every attempt counted against the real peer, 127.0.0.1, whatever it claimed to be.
    assert_limited(login_from(&app, Some("198.51.100.99"), "x@example.com", "wrong").await);
}

#[tokio::test]
async fn refused_registrations_count_like_the_rest() {
    let app = TestApp::sqlite_with(|c| c.limits.registrations_per_hour = 5).await;
    app.register("jake").await;
    for i in 0..4 {
        let body =
            json!({"user": {"username": "jake", "email": format!("probe{i}@example.com"), "password": "password123"}});
        assert_eq!(app.post("/api/users", None, body).await.0, StatusCode::CONFLICT);
    }
    let body = json!({"user": {"username": "fresh", "email": "fresh@example.com", "password": "password123"}});
    let (status, answer) = app.post("/api/users", None, body).await;
    assert_eq!(
        (status, error_messages(&answer, "rate")),
        (StatusCode::TOO_MANY_REQUESTS, vec!["too many attempts".to_string()])
    );
}

#[tokio::test]
async fn the_limit_follows_its_setting() {
    let app = TestApp::sqlite_with(|c| {
        real_limits(c);
        c.limits.login_attempts_per_minute = 3;
    })
    .await;
    app.register("jake").await;
    for _ in 0..3 {
        assert_eq!(login_from(&app, None, "jake@example.com", "wrong").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_limited(login_from(&app, None, "jake@example.com", "password123").await);
}

/// A proxy that appends its own `X-Forwarded-For` line (HAProxy's `option forwardfor`) leaves
/// the client's forged line first: the limit counts the address the proxy's line names, whatever
/// the first line says.
#[tokio::test]
async fn a_forged_first_forwarded_line_gains_nothing() {
    let app = TestApp::sqlite_with(behind_proxy).await;
    app.register("jake").await;
    let guess = |forged: String| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.append("x-forwarded-for", forged.parse().unwrap());
        headers.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        app.client
            .post(format!("{}/api/users/login", app.base))
            .headers(headers)
            .json(&json!({"user": {"email": "jake@example.com", "password": "wrong password"}}))
            .send()
    };
    for i in 0..10 {
        assert_eq!(guess(format!("203.0.113.{i}")).await.unwrap().status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let refused = guess("203.0.113.99".into()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS, "the eleventh guess from 198.51.100.7");
}

/// Mailed-token endpoints (verify, reset confirmation, undo) are limited per client address:
/// ten wrong tokens a minute, counted across the three, then 429 before any lookup; a right
/// token costs nothing, and another address is not affected.
async fn forged_tokens_are_limited_per_address(app: TestApp) {
    app.register("jake").await;
    let link = app.mailed_token("verify-email").await;
    let forged = |i: usize| json!({"token": format!("AAAAAAAAAAAAAAA{i}.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")});
    let paths = ["/api/users/verify", "/api/users/email-change/revert"];
    for i in 0..10 {
        let (status, body) = forged_from(&app, "198.51.100.1", paths[i % 2], forged(i)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "forged token {i}: {body}");
    }
    let confirm = json!({"token": "AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "password": "a long password"});
    let (status, body) = forged_from(&app, "198.51.100.1", "/api/users/password-reset/confirm", confirm).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the eleventh: {body}");
    assert_eq!(error_messages(&body, "rate"), ["too many attempts"]);
    let (status, body) = forged_from(&app, "198.51.100.2", "/api/users/verify", json!({"token": link})).await;
    assert_eq!(status, StatusCode::OK, "the real link from another address: {body}");
}

async fn forged_from(app: &TestApp, ip: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response =
        app.client.post(format!("{}{path}", app.base)).header("x-forwarded-for", ip).json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn forged_tokens_are_limited_per_address_on_sqlite() {
    forged_tokens_are_limited_per_address(TestApp::sqlite_with(behind_proxy).await).await
}

#[tokio::test]
async fn forged_tokens_are_limited_per_address_on_postgres() {
    forged_tokens_are_limited_per_address(TestApp::postgres_with(behind_proxy).await).await
}
