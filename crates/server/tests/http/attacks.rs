//! Hostile clients, as an attacker would send them: guesses in parallel, a lockout attempt from
//! another address, old tokens after a password change or a logout, floods of registrations,
//! slow bodies, cross-site form posts, and an admin removing the last admin. (The stolen-token
//! replay after a password change is in `accounts.rs`; the attacks across two instances sharing
//! Redis are in `scaleout.rs`.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{TestApp, error_messages, keys, real_limits};
use conduit_domain::model::Role;
use conduit_server::config::Config;
use conduit_server::ops::clock::ManualClock;
use conduit_store::AccountChanges;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    a_stale_login_cannot_change_the_password_or_email_without_the_current_password,
    a_logout_ends_the_tokens_its_session_handed_out,
    the_last_active_admin_cannot_be_demoted_or_deactivated,
);

/// Behind a proxy on 127.0.0.1, so `X-Forwarded-For` names the attacker's addresses; the real
/// default limits.
fn behind_proxy(config: &mut Config) {
    real_limits(config);
    config.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> StatusCode {
    app.client
        .post(format!("{}/api/users/login", app.base))
        .header("x-forwarded-for", ip)
        .json(&json!({"user": {"email": email, "password": password}}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Sends every guess at once and counts the answers by status.
async fn guess_in_parallel(app: &TestApp, guesses: usize, ip_of: impl Fn(usize) -> String) -> Vec<(StatusCode, usize)> {
    let answers = futures::future::join_all((0..guesses).map(|i| {
        let (ip, guess) = (ip_of(i), format!("guess number {i}"));
        async move { login_from(app, &ip, "jake@example.com", &guess).await }
    }))
    .await;
    let mut counts: Vec<(StatusCode, usize)> = Vec::new();
    for status in answers {
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }
    counts.sort();
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_are_evaluated_at_most_the_allowance() {
    // A hashing queue large enough that no guess is turned away for load: every one that gets
    // past the limiter is evaluated by Argon2 (and answered 401).
    let app = TestApp::sqlite_with(|c| {
        behind_proxy(c);
        c.limits.hash_queue = Some(1000);
    })
    .await;
    app.register("jake").await;

    // 120 at once from one address: 10 evaluated (the allowance), 110 refused before Argon2.
    let counts = guess_in_parallel(&app, 120, |_| "203.0.113.7".into()).await;
    assert_eq!(counts, [(StatusCode::UNAUTHORIZED, 10), (StatusCode::TOO_MANY_REQUESTS, 110)]);

    // 120 at once from 120 addresses: the account's own counter (10 x the allowance) holds.
    let counts = guess_in_parallel(&app, 120, |i| format!("198.51.100.{i}")).await;
    assert_eq!(counts, [(StatusCode::UNAUTHORIZED, 90), (StatusCode::TOO_MANY_REQUESTS, 30)]);

    // Each evaluation was a failed login; nothing else reached Argon2.
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"conduit_logins_total{result="failure"} 100"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_lock_the_owner_out_from_another_address() {
    let app = TestApp::sqlite_with(behind_proxy).await;
    app.register("jake").await;
    for _ in 0..30 {
        let status = login_from(&app, "203.0.113.66", "jake@example.com", "a guess").await;
        assert!(matches!(status, StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS), "{status}");
    }
    assert_eq!(
        login_from(&app, "203.0.113.66", "jake@example.com", "password123").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The owner, from home (IPv4) and from a phone (an IPv6 /64 the attacker does not share).
    assert_eq!(login_from(&app, "192.0.2.10", "jake@example.com", "password123").await, StatusCode::OK);
    assert_eq!(login_from(&app, "2001:db8:aa:bb::1", "jake@example.com", "password123").await, StatusCode::OK);
    // An IPv6 attacker is one client per /64, whichever addresses of it they use.
    for i in 0..10 {
        let ip = format!("2001:db8:66:1::{i:x}");
        assert_eq!(login_from(&app, &ip, "jake@example.com", "a guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login_from(&app, "2001:db8:66:1::ffff", "jake@example.com", "guess").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn a_stale_login_cannot_change_the_password_or_email_without_the_current_password(app: TestApp) {
    let fresh = app.register("jake").await;
    let stale = crate::common::an_hour_old_login(&app, "jake").await;

    // Without a recent login: 403 naming the field, for the password and for the email.
    for change in [json!({"password": "the attacker's password"}), json!({"email": "attacker@example.com"})] {
        let (status, body) = app.put("/api/user", Some(&stale), json!({"user": change})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(error_messages(&body, "currentPassword")[0].starts_with("is required"), "{body}");
    }
    // Everything else still changes with any valid token.
    let (status, _) = app.put("/api/user", Some(&stale), json!({"user": {"bio": "harmless"}})).await;
    assert_eq!(status, StatusCode::OK);
    // Renewing the token does not make the login recent: GET /api/user hands the same one back.
    let (_, body) = app.get("/api/user", Some(&stale)).await;
    assert_eq!(body["user"]["token"].as_str(), Some(stale.as_str()));

    // A wrong current password is a failed login: 403, and counted.
    let wrong = json!({"user": {"password": "the attacker's password", "currentPassword": "a guess"}});
    let (status, body) = app.put("/api/user", Some(&stale), wrong.clone()).await;
    assert_eq!(
        (status, error_messages(&body, "currentPassword")),
        (StatusCode::FORBIDDEN, vec!["is wrong".to_string()])
    );
    for _ in 0..9 {
        assert_eq!(app.put("/api/user", Some(&stale), wrong.clone()).await.0, StatusCode::FORBIDDEN);
    }
    let (status, body) = app.put("/api/user", Some(&stale), wrong).await;
    assert_eq!(
        (status, error_messages(&body, "rate")),
        (StatusCode::TOO_MANY_REQUESTS, vec!["too many attempts".into()])
    );

    // The owner, just registered (a login a moment ago), changes the email without it...
    let (status, body) = app.put("/api/user", Some(&fresh), json!({"user": {"email": "jacob@example.com"}})).await;
    assert_eq!((status, body["user"]["email"].as_str()), (StatusCode::OK, Some("jacob@example.com")), "{body}");
    // ...and with an old login, the right current password does it. (The account is jacob's
    // now, so the failures above, counted against jake's, do not stand in the way.)
    let stale = crate::common::an_hour_old_login(&app, "jacob").await;
    let right = json!({"user": {"password": "a brand new password", "currentPassword": "password123"}});
    let response = app
        .client
        .put(format!("{}/api/user", app.base))
        .header("authorization", format!("Token {stale}"))
        .json(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let renewed = keys().check(body["user"]["token"].as_str().unwrap()).unwrap();
    assert!(chrono::Utc::now().timestamp() - renewed.auth_time < 60, "the confirmed password is a fresh login");
}

/// Logs in over `POST /api/session` and returns the cookie and the token it answered with.
async fn session_login(app: &TestApp, name: &str) -> (String, String) {
    let response = app
        .client
        .post(format!("{}/api/session", app.base))
        .json(&json!({"user": {"email": format!("{name}@example.com"), "password": "password123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    (cookie, body["user"]["token"].as_str().unwrap().to_owned())
}

async fn with_cookie(app: &TestApp, method: Method, path: &str, cookie: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("cookie", cookie)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_logout_ends_the_tokens_its_session_handed_out(app: TestApp) {
    let by_token = app.register("jake").await;
    let (cookie, from_login) = session_login(&app, "jake").await;
    let (status, body) = with_cookie(&app, Method::GET, "/api/user", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let from_current = body["user"]["token"].as_str().unwrap().to_owned();
    let (other_cookie, from_other_session) = session_login(&app, "jake").await;
    for token in [&from_login, &from_current, &from_other_session, &by_token] {
        assert_eq!(app.get("/api/user", Some(token)).await.0, StatusCode::OK);
    }

    assert_eq!(with_cookie(&app, Method::DELETE, "/api/session", &cookie).await.0, StatusCode::NO_CONTENT);
    for token in [&from_login, &from_current] {
        let (status, body) = app.get("/api/user", Some(token)).await;
        assert_eq!(
            (status, error_messages(&body, "token")),
            (StatusCode::UNAUTHORIZED, vec!["has been revoked".to_string()]),
            "a token of the ended session"
        );
    }
    // Another session, its tokens, and tokens from token logins live on.
    for token in [&from_other_session, &by_token] {
        assert_eq!(app.get("/api/user", Some(token)).await.0, StatusCode::OK);
    }
    assert_eq!(with_cookie(&app, Method::GET, "/api/user", &other_cookie).await.0, StatusCode::OK);
    // Logging out again, or without a session, is still fine.
    assert_eq!(with_cookie(&app, Method::DELETE, "/api/session", &cookie).await.0, StatusCode::NO_CONTENT);

    // Logging in again over a live session starts a new one: the old one's tokens end then.
    let response = app
        .client
        .post(format!("{}/api/session", app.base))
        .header("cookie", &other_cookie)
        .json(&json!({"user": {"email": "jake@example.com", "password": "password123"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = app.get("/api/user", Some(&from_other_session)).await;
    assert_eq!(
        (status, error_messages(&body, "token")),
        (StatusCode::UNAUTHORIZED, vec!["has been revoked".to_string()])
    );
}

async fn the_last_active_admin_cannot_be_demoted_or_deactivated(app: TestApp) {
    let boss = app.register("boss").await;
    app.register("pleb").await;
    app.store
        .set_account(
            &conduit_domain::Username::parse("boss").unwrap(),
            &AccountChanges { role: Some(Role::Admin), active: None, by: None },
        )
        .await
        .unwrap()
        .unwrap();
    for change in [json!({"active": false}), json!({"role": "user"})] {
        let (status, body) = app.put("/api/admin/users/boss", Some(&boss), json!({"user": change})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(error_messages(&body, "user")[0].starts_with("is the last active admin"), "{body}");
    }
    assert_eq!(app.get("/api/admin/users", Some(&boss)).await.0, StatusCode::OK, "still an admin");
    // With a second admin, the first may step down.
    let (status, _) = app.put("/api/admin/users/pleb", Some(&boss), json!({"user": {"role": "admin"}})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.put("/api/admin/users/boss", Some(&boss), json!({"user": {"role": "user"}})).await;
    assert_eq!((status, body["user"]["role"].as_str()), (StatusCode::OK, Some("user")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_address_successful_ones_too() {
    let app = TestApp::sqlite_with(behind_proxy).await;
    let register = |i: usize, ip: &'static str| {
        let body = json!({"user": {"username": format!("u{i}"), "email": format!("u{i}@example.com"), "password": "password123"}});
        app.client.post(format!("{}/api/users", app.base)).header("x-forwarded-for", ip).json(&body).send()
    };
    for i in 0..20 {
        assert_eq!(register(i, "203.0.113.5").await.unwrap().status(), StatusCode::CREATED);
    }
    let refused = register(20, "203.0.113.5").await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 60, "the allowance is per hour: retry in {retry} s");
    assert_eq!(register(21, "203.0.113.6").await.unwrap().status(), StatusCode::CREATED, "another address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_registrations_and_logins_is_turned_away_at_once_and_readers_are_served() {
    let settings = |c: &mut Config| {
        behind_proxy(c);
        c.limits.hash_queue = Some(64);
    };
    let app = TestApp::sqlite_with(settings).await;
    let reader = app.register("reader").await;
    // 500 at once, each from its own address (a botnet): half registrations, half logins.
    let flooder = |i: usize| {
        let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        let request = if i.is_multiple_of(2) {
            let body = json!({"user": {"username": format!("f{i}"), "email": format!("f{i}@example.com"), "password": "password123"}});
            app.client.post(format!("{}/api/users", app.base)).json(&body)
        } else {
            let body = json!({"user": {"email": format!("f{}@example.com", i - 1), "password": "password123"}});
            app.client.post(format!("{}/api/users/login", app.base)).json(&body)
        };
        async move {
            let started = Instant::now();
            let response = request.header("x-forwarded-for", ip).send().await.unwrap();
            let (status, retry_after) = (response.status(), response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body, started.elapsed())
        }
    };
    let read = || async {
        let started = Instant::now();
        let status = app.get("/api/user", Some(&reader)).await.0;
        (status, started.elapsed())
    };
    let flood = futures::future::join_all((0..500).map(flooder));
    let reads = async {
        // Reads go on, 8 at a time, while the flood is in flight.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut reads = Vec::new();
        for _ in 0..25 {
            reads.extend(futures::future::join_all((0..8).map(|_| read())).await);
        }
        reads
    };
    let (flood, reads) = tokio::join!(flood, reads);

    // Past the hashing queue, requests are turned away at once with Retry-After instead of
    // holding a connection and a request slot until their turn (or the request timeout).
    let busy: Vec<_> = flood.iter().filter(|(status, ..)| *status == StatusCode::SERVICE_UNAVAILABLE).collect();
    for (_, retry_after, body, _) in &busy {
        assert!(*retry_after, "503 carries Retry-After");
        assert_eq!(error_messages(body, "server"), ["too many logins and registrations at once, retry shortly"]);
    }
    let slowest_admitted =
        flood.iter().filter(|(status, ..)| status.is_success()).map(|(.., took)| *took).max().unwrap();
    let slowest_busy = busy.iter().map(|(.., took)| *took).max().unwrap_or_default();
    let mut answers: Vec<(u16, usize)> = Vec::new();
    for (status, ..) in &flood {
        match answers.iter_mut().find(|(s, _)| *s == status.as_u16()) {
            Some((_, n)) => *n += 1,
            None => answers.push((status.as_u16(), 1)),
        }
    }
    println!("flood answers {answers:?}; slowest admitted {slowest_admitted:?}, slowest turned away {slowest_busy:?}");
    assert!(busy.len() >= 100, "most of the flood is turned away: {answers:?}");
    assert!(slowest_busy < slowest_admitted, "turned away without waiting for a turn");
    for (status, ..) in &flood {
        assert!(
            matches!(
                *status,
                StatusCode::CREATED | StatusCode::OK | StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{status}"
        );
    }

    let mut latencies: Vec<Duration> = reads.iter().map(|(_, t)| *t).collect();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    println!("token reads during the flood: p99 {p99:?}, max {:?}", latencies.last().unwrap());
    let statuses: Vec<_> = reads.iter().map(|r| r.0).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "every read is served: {statuses:?}");
}

/// A raw HTTP/1.1 request whose body is announced but sent only in part.
async fn slow_body(base: &str, path: &str) -> (Duration, String) {
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"user\":"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    (started.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off_with_408() {
    let settings = |c: &mut Config| {
        real_limits(c);
        c.http.body_timeout = Duration::from_secs(1);
        c.http.request_timeout = Duration::from_secs(8);
    };
    let app = TestApp::sqlite_with(settings).await;
    let (took, answer) = slow_body(&app.base, "/api/users/login").await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#"{"errors":{"body":["did not arrive in time"]}}"#), "{answer}");
    assert!(took < Duration::from_secs(8), "cut off by the body deadline, not the request timeout: {took:?}");
}

/// Opens a connection and sends a request whose body is announced (1,000 bytes) but only begun,
/// from `ip` (through the proxy on 127.0.0.1) with `token`; the connection is returned open.
async fn begin_slow_body(base: &str, method: &str, path: &str, ip: &str, token: Option<&str>) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Token {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {ip}\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"user\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// The status of whatever the server has answered on `stream` within `within`, if anything.
async fn answer_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<u16> {
    let mut answer = vec![0; 512];
    let n = tokio::time::timeout(within, stream.read(&mut answer)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&answer[..n]);
    text.split(' ').nth(1)?.parse().ok()
}

/// 200 login bodies trickling in from 200 addresses held every place of the password-hash
/// queue (taken before the body was read): a real login answered 503. Now a body is read before
/// the request takes a slot or a queue place, so they hold nothing but their connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_login_bodies_from_many_addresses_hold_no_place_in_the_hash_queue() {
    let app = TestApp::sqlite_with(behind_proxy).await;
    app.register("jake").await;
    let mut slow = Vec::new();
    for i in 0..200 {
        let ip = format!("10.9.{}.{}", i / 256, i % 256);
        slow.push(begin_slow_body(&app.base, "POST", "/api/users/login", &ip, None).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = login_from(&app, "192.0.2.77", "jake@example.com", "password123").await;
    assert_eq!(status, StatusCode::OK, "a real login while 200 bodies trickle in");
    let (status, _) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "anna", "email": "anna@example.com", "password": "password123"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "a registration too");
    for stream in &mut slow {
        assert_eq!(answer_within(stream, Duration::from_millis(1)).await, None, "still waiting for its body");
    }
}

/// One account holder's slow `PUT /api/user` bodies held every request slot: then any read
/// answered 503. Now they hold no slot while their bodies arrive, and one address holds at most
/// `CONDUIT_MAX_REQUESTS_PER_ADDRESS` requests in flight: past it, 429 (at once for a request
/// without a body; one with a body is read and thrown away first, see `http::edge`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_requests_and_no_slot_while_bodies_arrive() {
    let app = TestApp::sqlite_with(|c| {
        behind_proxy(c);
        c.http.max_concurrency = 16;
        c.http.max_requests_per_address = 20;
    })
    .await;
    let token = app.register("holder").await;
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(begin_slow_body(&app.base, "PUT", "/api/user", "203.0.113.50", Some(&token)).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for stream in &mut slow {
        assert_eq!(answer_within(stream, Duration::from_millis(1)).await, None, "still waiting for its body");
    }
    // 20 bodies arriving hold none of the 16 slots: others are served.
    let reads = futures::future::join_all((0..10).map(|i| {
        let request =
            app.client.get(format!("{}/api/articles", app.base)).header("x-forwarded-for", format!("192.0.2.{i}"));
        async move { request.send().await.unwrap().status() }
    }))
    .await;
    assert!(reads.iter().all(|s| *s == StatusCode::OK), "{reads:?}");
    let busy = || app.client.get(format!("{}/api/articles", app.base)).header("x-forwarded-for", "203.0.113.50");
    let started = Instant::now();
    let response = busy().send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the busy address itself");
    assert!(started.elapsed() < Duration::from_secs(2), "at once: {:?}", started.elapsed());
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert!(!error_messages(&body, "rate").is_empty(), "{body}");
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(busy().send().await.unwrap().status(), StatusCode::OK, "its places come back as its requests end");
}

/// A peer that is not a trusted proxy holds at most `CONDUIT_MAX_CONNECTIONS_PER_ADDRESS`
/// connections: the next one is closed before anything is read from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_holds_at_most_its_connections() {
    let app = TestApp::sqlite_with(|c| c.http.max_connections_per_address = 8).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut ninth = tokio::net::TcpStream::connect(&address).await.unwrap();
    let _ = ninth.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), ninth.read_to_end(&mut answer)).await;
    assert!(answer.is_empty(), "the ninth connection is closed unanswered: {}", String::from_utf8_lossy(&answer));
    let mut first = open.remove(0);
    first.write_all(request).await.unwrap();
    assert_eq!(answer_within(&mut first, Duration::from_secs(5)).await, Some(200), "the eight are served");
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = tokio::net::TcpStream::connect(&address).await.unwrap();
    again.write_all(request).await.unwrap();
    assert_eq!(answer_within(&mut again, Duration::from_secs(5)).await, Some(200), "a place freed is taken again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_text_plain_login_is_refused() {
    let app = TestApp::sqlite().await;
    app.register("attacker").await;
    // What a form on another site can send without asking the browser: text/plain, or no type.
    let body = r#"{"user":{"email":"attacker@example.com","password":"password123"}}"#;
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        for path in ["/api/session", "/api/users/login"] {
            let mut request = app.client.post(format!("{}{path}", app.base)).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?} {path}");
            assert!(response.headers().get("set-cookie").is_none(), "no session for {content_type:?}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(error_messages(&answer, "body"), ["must be JSON sent with Content-Type: application/json"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_that_changed_the_password_lasts_only_until_its_login_window_closes() {
    // The window is the default 600 s, on a clock the test moves instead of waiting.
    let clock = Arc::new(ManualClock::default());
    let app = TestApp::sqlite_with_clock(clock.clone(), |_| {}).await;
    let token = app.register("jake").await;
    let (status, _) = app.put("/api/user", Some(&token), json!({"user": {"password": "a brand new password"}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get("/api/user", Some(&token)).await.0, StatusCode::OK, "within the window");
    clock.advance(Duration::from_secs(599));
    assert_eq!(app.get("/api/user", Some(&token)).await.0, StatusCode::OK, "its last second");
    // Login times are whole seconds: past the window's last second, and no further.
    clock.advance(Duration::from_secs(3));
    let (status, body) = app.get("/api/user", Some(&token)).await;
    assert_eq!(
        (status, error_messages(&body, "token")),
        (StatusCode::UNAUTHORIZED, vec!["has been revoked".to_string()])
    );
}
