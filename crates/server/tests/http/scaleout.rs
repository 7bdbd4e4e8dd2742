//! Two real `conduit` processes on one PostgreSQL database and one Redis, as behind a load
//! balancer; then a Redis outage under a running instance.

use std::time::{Duration, Instant};

use crate::common::process::{RedisServer, Server, conduit, run};
use conduit_store_postgres::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET: &str = "a shared secret for both instances, 32+ characters";

struct Browser {
    client: reqwest::Client,
}

impl Browser {
    fn new() -> Self {
        Browser { client: reqwest::Client::new() }
    }

    /// Sends with the cookie (and the instance's own Origin for changes); returns status,
    /// the new session cookie if one was set, and the body.
    async fn call(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = self.client.request(method.clone(), format!("{base}{path}"));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if method != reqwest::Method::GET {
            request = request.header("origin", base);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("conduit_session="))
            .map(|c| c.split(';').next().unwrap().to_owned());
        (status, cookie, response.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, base: &str, password: &str) -> String {
        let body = json!({"user": {"email": "jake@example.com", "password": password}});
        let (status, cookie, answer) = self.call(base, reqwest::Method::POST, "/api/session", None, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        cookie.unwrap()
    }

    async fn me(&self, base: &str, cookie: &str) -> StatusCode {
        self.call(base, reqwest::Method::GET, "/api/user", Some(cookie), None).await.0
    }
}

fn instance(dir: &std::path::Path, database: &str, redis: &str) -> Server {
    let env = [
        ("DATABASE_URL", database),
        ("REDIS_URL", redis),
        ("CONDUIT_JWT_SECRET", SECRET),
        // As behind a load balancer on this host: X-Forwarded-For names the client.
        ("CONDUIT_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    Server::start_with(dir, &env)
}

/// Two instances on a fresh database and Redis; the guards keep those alive.
struct Pair {
    a: Server,
    b: Server,
    database: TestDatabase,
    dir: tempfile::TempDir,
    _redis: RedisServer,
}

async fn two_instances() -> Pair {
    let redis = RedisServer::start();
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), &database.url, &redis.url());
    let b = instance(dir.path(), &database.url, &redis.url());
    Pair { a, b, database, dir, _redis: redis }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_sessions_logouts_password_changes_and_rate_limits() {
    // Every guard bound, so none is dropped before the end.
    let Pair { a, b, database: _database, dir: _dir, _redis } = two_instances().await;
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let browser = Browser::new();
    let register = json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let (status, _, _) = browser.call(&a_base, reqwest::Method::POST, "/api/users", None, Some(register)).await;
    assert_eq!(status, StatusCode::CREATED);

    // A session made through A works on B, and a logout on B ends it on A, with the token the
    // session handed out on A.
    let cookie = browser.login(&a_base, "password123").await;
    assert_eq!(browser.me(&b_base, &cookie).await, StatusCode::OK);
    let (_, _, body) = browser.call(&a_base, reqwest::Method::GET, "/api/user", Some(&cookie), None).await;
    let session_token = body["user"]["token"].as_str().unwrap().to_owned();
    let with_token = |base: String| {
        let request =
            browser.client.get(format!("{base}/api/user")).header("authorization", format!("Token {session_token}"));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(with_token(a_base.clone()).await, StatusCode::OK);
    let (status, _, _) = browser.call(&b_base, reqwest::Method::DELETE, "/api/session", Some(&cookie), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(browser.me(&a_base, &cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(with_token(a_base.clone()).await, StatusCode::UNAUTHORIZED, "the session's token ended with it on A");
    assert_eq!(with_token(b_base.clone()).await, StatusCode::UNAUTHORIZED);

    // A password change through A ends B's session, on both; the changing session is renewed.
    let on_a = browser.login(&a_base, "password123").await;
    let on_b = browser.login(&b_base, "password123").await;
    let change = json!({"user": {"password": "a changed password"}});
    let (status, renewed, _) =
        browser.call(&a_base, reqwest::Method::PUT, "/api/user", Some(&on_a), Some(change)).await;
    assert_eq!(status, StatusCode::OK);
    for base in [&a_base, &b_base] {
        assert_eq!(browser.me(base, &on_b).await, StatusCode::UNAUTHORIZED);
        assert_eq!(browser.me(base, renewed.as_deref().unwrap()).await, StatusCode::OK);
    }

    // Failed logins count on both: 5 through each, then the 11th attempt is refused on either.
    let wrong = || json!({"user": {"email": "jake@example.com", "password": "wrong"}});
    for base in [&a_base, &b_base].repeat(5) {
        let (status, _, _) = browser.call(base, reqwest::Method::POST, "/api/users/login", None, Some(wrong())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let right = json!({"user": {"email": "jake@example.com", "password": "a changed password"}});
    let (status, _, body) = browser.call(&a_base, reqwest::Method::POST, "/api/users/login", None, Some(right)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// 120 wrong guesses for one account sent at once, split over two instances sharing Redis: the
/// counters are reserved atomically in Redis, so no more than the allowance are evaluated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_across_two_instances_are_evaluated_at_most_the_allowance() {
    let Pair { a, b, database: _database, dir: _dir, _redis } = two_instances().await;
    let client = reqwest::Client::new();
    let register = json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let status = client.post(format!("{}/api/users", a.base)).json(&register).send().await.unwrap().status();
    assert_eq!(status, StatusCode::CREATED);
    let guesses = (0..120u32).map(|i| {
        let base = if i.is_multiple_of(2) { &a.base } else { &b.base };
        let body = json!({"user": {"email": "jake@example.com", "password": format!("guess {i}")}});
        let request = client.post(format!("{base}/api/users/login")).json(&body);
        async move { request.send().await.unwrap().status() }
    });
    let answers = futures::future::join_all(guesses).await;
    let evaluated = answers.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = answers.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((evaluated, refused), (10, 110), "{answers:?}");

    // 120 more from 120 addresses: the account's own counter (10 x 10, of which 10 are used)
    // holds across both instances.
    let guesses = (0..120u32).map(|i| {
        let base = if i.is_multiple_of(2) { &a.base } else { &b.base };
        let body = json!({"user": {"email": "jake@example.com", "password": format!("guess {i}")}});
        let request =
            client.post(format!("{base}/api/users/login")).header("x-forwarded-for", format!("198.51.100.{i}"));
        let request = request.json(&body);
        async move { request.send().await.unwrap().status() }
    });
    let answers = futures::future::join_all(guesses).await;
    let evaluated = answers.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = answers.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    let busy = answers.iter().filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE).count();
    // Some may be turned away by a full hashing queue instead (503, not evaluated, not counted).
    assert!(evaluated <= 90 && refused >= 30 && evaluated + refused + busy == 120, "{answers:?}");
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// `conduit user ...` is another process changing the database under two running instances,
/// which cache users: by the time the command returns, its change must hold on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_hold_on_every_running_instance_when_they_return() {
    let Pair { a, b, database, dir, _redis } = two_instances().await;
    let client = reqwest::Client::new();
    let register = json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let answer: Value =
        client.post(format!("{}/api/users", a.base)).json(&register).send().await.unwrap().json().await.unwrap();
    let token = answer["user"]["token"].as_str().unwrap().to_owned();
    let get = |base: &str, path: &str| {
        client.get(format!("{base}{path}")).header("Authorization", format!("Token {token}")).send()
    };
    let command = |args: &[&str]| {
        run(conduit(dir.path()).args(args).env("DATABASE_URL", &database.url).env("CONDUIT_JWT_SECRET", SECRET))
    };
    for base in [&a.base, &b.base] {
        // Cached on both: the token works and is not an admin's.
        assert_eq!(get(base, "/api/user").await.unwrap().status(), StatusCode::OK);
        assert_eq!(get(base, "/api/admin/users").await.unwrap().status(), StatusCode::FORBIDDEN);
    }
    let (ok, _, stderr) = command(&["user", "promote", "jake"]);
    assert!(ok, "{stderr}");
    for base in [&a.base, &b.base] {
        assert_eq!(
            get(base, "/api/admin/users").await.unwrap().status(),
            StatusCode::OK,
            "promotion not yet seen on {base}"
        );
    }
    // A new password hash revokes every earlier token.
    let phc = conduit_domain::password::hash("an imported password").unwrap();
    let (ok, _, stderr) = command(&["user", "set-password-hash", "jake", &phc]);
    assert!(ok, "{stderr}");
    for base in [&a.base, &b.base] {
        let status = get(base, "/api/user").await.unwrap().status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked token still worked on {base}");
    }
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_spares_tokens_fails_sessions_fast_and_heals() {
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("conduit.db").display());
    let server = instance(dir.path(), &database, &redis.url());
    let base = server.base.clone();
    let browser = Browser::new();
    let register = json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let (_, _, body) = browser.call(&base, reqwest::Method::POST, "/api/users", None, Some(register)).await;
    let token = body["user"]["token"].as_str().unwrap().to_owned();
    let cookie = browser.login(&base, "password123").await;
    let with_token = |path: &str| {
        browser.client.get(format!("{base}{path}")).header("authorization", format!("Token {token}")).send()
    };

    redis.stop();
    // Tokens keep working, reads and writes alike.
    assert_eq!(with_token("/api/user").await.unwrap().status(), StatusCode::OK);
    let article = json!({"article": {"title": "Written while Redis is down", "description": "d", "body": "b"}});
    let response = browser
        .client
        .post(format!("{base}/api/articles"))
        .header("authorization", format!("Token {token}"))
        .json(&article)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // Sessions fail fast, with a clear error.
    let started = Instant::now();
    let (status, _, body) = browser.call(&base, reqwest::Method::GET, "/api/user", Some(&cookie), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, json!({"errors": {"session": ["store unavailable"]}}));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let (status, _, body) = browser.call(&base, reqwest::Method::GET, "/health/ready", None, None).await;
    assert_eq!(
        (status, body["checks"]["redis"]["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
    assert_eq!(browser.call(&base, reqwest::Method::GET, "/health/live", None, None).await.0, StatusCode::OK);

    // Back again: the same session works, with no restart of conduit.
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.me(&base, &cookie).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "sessions did not recover after Redis came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(browser.call(&base, reqwest::Method::GET, "/health/ready", None, None).await.0, StatusCode::OK);
    let fresh = browser.login(&base, "password123").await;
    assert_eq!(browser.me(&base, &fresh).await, StatusCode::OK);
    assert!(server.terminate().success(), "no panic, clean exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_503_after_the_acquire_timeout_then_recovers() {
    use sqlx::Connection;
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("DATABASE_URL", database.url.as_str()),
        ("CONDUIT_JWT_SECRET", SECRET),
        ("CONDUIT_DB_POOL_SIZE", "1"),
        ("CONDUIT_DB_ACQUIRE_TIMEOUT", "0.5"),
    ];
    let server = Server::start_with(dir.path(), &env);
    let base = server.base.clone();
    let browser = Browser::new();
    let register = json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let (_, _, body) = browser.call(&base, reqwest::Method::POST, "/api/users", None, Some(register)).await;
    let token = body["user"]["token"].as_str().unwrap().to_owned();

    // A slow transaction elsewhere locks the users table: a request that needs it waits,
    // holding the pool's only connection.
    let mut locker = sqlx::PgConnection::connect(&database.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let stuck: Vec<_> = (0..1)
        .map(|_| {
            let request =
                browser.client.get(format!("{base}/api/user")).header("authorization", format!("Token {token}"));
            tokio::spawn(request.send())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut locker)
        .await
        .unwrap();
        if waiting >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the request never got stuck");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Everyone else waits at most the acquire timeout, then gets a clear 503.
    let started = Instant::now();
    let (status, _, body) = browser.call(&base, reqwest::Method::GET, "/api/articles", None, None).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, json!({"errors": {"server": ["temporarily unavailable, retry shortly"]}}));
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(3), "waited {waited:?}");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    for request in stuck {
        assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK, "the stuck request finishes");
    }
    assert_eq!(browser.call(&base, reqwest::Method::GET, "/api/articles", None, None).await.0, StatusCode::OK);
    assert!(server.terminate().success());
}
