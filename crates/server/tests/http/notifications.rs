//! Notifications over real HTTP: the inbox, and the Server-Sent Events stream read by a real
//! HTTP client (a `reqwest` response read chunk by chunk and parsed as a browser's
//! `EventSource` parses it), on both backends; then two `conduit` processes on PostgreSQL and
//! Redis: a stream on one hears of writes on the other, with Redis and without it, and clients
//! moved by a `kill -9` of their instance miss nothing and get nothing twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::process::{RedisServer, Server};

/// How long anything may take to arrive before a test gives up (not a speed bar: BENCHMARKS.md
/// has the delivery times).
const WITHIN: Duration = Duration::from_secs(10);

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    pub fn number(&self) -> i64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

/// A stream as `EventSource` reads one: events split on blank lines, `:` lines ignored.
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
    /// The last `id:` seen, as `EventSource.lastEventId` keeps it.
    pub last_id: Option<String>,
}

impl SseClient {
    /// Opens `/api/notifications/stream`; the status when it is not 200.
    pub async fn open(base: &str, token: &str, last_id: Option<&str>) -> Result<SseClient, (StatusCode, Value)> {
        let mut request = reqwest::Client::new()
            .get(format!("{base}/api/notifications/stream"))
            .header("authorization", format!("Token {token}"))
            .header("accept", "text/event-stream");
        if let Some(last) = last_id {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.map_err(|e| (StatusCode::BAD_GATEWAY, json!(e.to_string())))?;
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Ok(SseClient { response, buffer: String::new(), last_id: last_id.map(str::to_owned) })
    }

    /// The next event; `None` when the stream ended (or failed) or nothing came within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { event: "message".into(), ..SseEvent::default() };
                let mut data = Vec::new();
                for line in block.lines() {
                    if line.starts_with(':') {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => event.event = value.to_owned(),
                        "id" => event.id = Some(value.to_owned()),
                        "data" => data.push(value.to_owned()),
                        _ => {}
                    }
                }
                if data.is_empty() && event.id.is_none() {
                    continue; // a keep-alive comment
                }
                event.data = data.join("\n");
                if event.id.is_some() {
                    self.last_id.clone_from(&event.id);
                }
                return Some(event);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Events up to and including the next `ready`.
    pub async fn until_ready(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next(WITHIN).await.expect("the stream ended before `ready`");
            let ready = event.event == "ready";
            events.push(event);
            if ready {
                return events;
            }
        }
    }

    /// `n` notifications and the `ready` event, however they interleave (what was committed
    /// but not yet read by the instance's tail when the stream opened comes live, after
    /// `ready`): the notifications in order, and `ready`.
    pub async fn resumed(&mut self, n: usize) -> (Vec<SseEvent>, SseEvent) {
        let (mut notifications, mut ready) = (Vec::new(), None);
        while notifications.len() < n || ready.is_none() {
            let event = self.next(WITHIN).await.expect("the stream ended early");
            match event.event.as_str() {
                "notification" => notifications.push(event),
                "ready" => ready = Some(event),
                other => panic!("unexpected {other}: {event:?}"),
            }
        }
        (notifications, ready.unwrap())
    }

    /// The next `notification` event.
    pub async fn notification(&mut self) -> SseEvent {
        let event = self.next(WITHIN).await.expect("no notification arrived");
        assert_eq!(event.event, "notification", "{event:?}");
        event
    }
}

async fn slug_of(app: &TestApp, token: &str, title: &str) -> String {
    app.article(token, title, &[]).await
}

// --- the inbox (both backends) ---

async fn the_inbox_lists_counts_and_marks_read(app: TestApp) {
    let anna = app.register("anna").await;
    let bob = app.register("bob").await;
    let post = slug_of(&app, &anna, "A post").await;
    app.post("/api/profiles/anna/follow", Some(&bob), json!({})).await;
    app.post(&format!("/api/articles/{post}/favorite"), Some(&bob), json!({})).await;
    let (status, _) =
        app.post(&format!("/api/articles/{post}/comments"), Some(&bob), json!({"comment": {"body": "Nice one"}})).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = app.get("/api/notifications", Some(&anna)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let kinds: Vec<&str> =
        body["notifications"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["comment", "favorite", "follow"], "newest first");
    assert_eq!(body["unreadCount"], 3);
    let comment = &body["notifications"][0];
    assert_eq!(comment["actor"]["username"], "bob");
    assert_eq!(comment["article"], json!({"slug": post, "title": "A post"}));
    assert_eq!(comment["comment"]["excerpt"], "Nice one");
    assert_eq!(comment["read"], false);
    let ids: Vec<i64> = body["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect();

    let (_, first) = app.get("/api/notifications?limit=2", Some(&anna)).await;
    assert_eq!(first["notifications"].as_array().unwrap().len(), 2);
    let cursor = first["nextCursor"].as_str().expect("a next page").to_owned();
    let (_, second) = app.get(&format!("/api/notifications?limit=2&cursor={cursor}"), Some(&anna)).await;
    assert_eq!(second["notifications"][0]["id"], ids[2]);
    assert!(second.get("nextCursor").is_none(), "{second}");
    assert!(app.get("/api/notifications", Some(&bob)).await.1["notifications"].as_array().unwrap().is_empty());

    for (path, token, expected) in [
        ("/api/notifications", None, StatusCode::UNAUTHORIZED),
        ("/api/notifications?limit=-1", Some(&anna), StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/notifications?cursor=forged", Some(&anna), StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/notifications/stream", None, StatusCode::UNAUTHORIZED),
    ] {
        let (status, body) = app.get(path, token.map(String::as_str)).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["errors"].is_object(), "{path}: the API's error shape: {body}");
    }

    let (status, body) = app.post(&format!("/api/notifications/{}/read", ids[1]), Some(&bob), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not his: {body}");
    for bad in ["abc", "-1", "99999999999999999999"] {
        let (status, body) = app.post(&format!("/api/notifications/{bad}/read"), Some(&anna), json!({})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, body) = app.post(&format!("/api/notifications/{}/read", ids[1]), Some(&anna), json!({})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"unreadCount": 2})));
    let (status, body) = app.post("/api/notifications/read?through=x", Some(&anna), json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, body) = app.post(&format!("/api/notifications/read?through={}", ids[2]), Some(&anna), json!({})).await;
    assert_eq!(body, json!({"unreadCount": 1}), "only up to the one given");
    let (_, body) = app.post("/api/notifications/read", Some(&anna), json!({})).await;
    assert_eq!(body, json!({"unreadCount": 0}));
    let (_, body) = app.get("/api/notifications", Some(&anna)).await;
    assert!(body["notifications"].as_array().unwrap().iter().all(|n| n["read"] == true));
}

// --- the stream (both backends) ---

async fn the_stream_delivers_in_order_and_resumes_exactly(app: TestApp) {
    let anna = app.register("anna").await;
    let bob = app.register("bob").await;
    let post = slug_of(&app, &anna, "A post").await;
    let mut stream = SseClient::open(&app.base, &anna, None).await.unwrap();
    let ready = stream.until_ready().await;
    assert_eq!(ready.len(), 1, "a fresh stream sends only `ready`: {ready:?}");
    assert_eq!(ready[0].json(), json!({"unreadCount": 0}));
    let start = ready[0].number();

    app.post("/api/profiles/anna/follow", Some(&bob), json!({})).await;
    let follow = stream.notification().await;
    assert_eq!(follow.json()["kind"], "follow");
    assert!(follow.number() > start);
    assert_eq!(follow.json()["id"].as_i64(), Some(follow.number()), "the event id is the notification's id");
    drop(stream);

    let comment = |body: &'static str| {
        let (app, bob, post) = (&app, &bob, &post);
        async move {
            let path = format!("/api/articles/{post}/comments");
            assert_eq!(app.post(&path, Some(bob), json!({"comment": {"body": body}})).await.0, StatusCode::CREATED);
        }
    };
    comment("one").await;
    comment("two").await;
    let last = follow.id.clone().unwrap();
    let mut resumed = SseClient::open(&app.base, &anna, Some(&last)).await.unwrap();
    let (missed, ready) = resumed.resumed(2).await;
    let excerpts: Vec<Value> = missed.iter().map(|e| e.json()["comment"]["excerpt"].clone()).collect();
    assert_eq!(excerpts, [json!("one"), json!("two")], "what was missed, in order: {missed:?}");
    assert_eq!(ready.json(), json!({"unreadCount": 3}));
    comment("three").await;
    assert_eq!(resumed.notification().await.json()["comment"]["excerpt"], "three", "then live");
    let after_three = resumed.last_id.clone().unwrap();
    drop(resumed);

    let mut from_start = SseClient::open(&app.base, &anna, Some(&start.to_string())).await.unwrap();
    let (all, _) = from_start.resumed(4).await;
    let kinds: Vec<Value> = all.iter().map(|e| e.json()["kind"].clone()).collect();
    assert_eq!(kinds, [json!("follow"), json!("comment"), json!("comment"), json!("comment")]);
    let ids: Vec<i64> = all.iter().map(SseEvent::number).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let mut up_to_date = SseClient::open(&app.base, &anna, Some(&after_three)).await.unwrap();
    assert_eq!(up_to_date.until_ready().await.len(), 1, "nothing twice");
    assert!(up_to_date.next(Duration::from_millis(300)).await.is_none(), "nothing after either");
    for bad in ["x", "-3", "1.5"] {
        let (status, body) = SseClient::open(&app.base, &anna, Some(bad)).await.err().unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
}

/// A new article reaches the streams of the author's followers (live, and when they resume),
/// nobody else's, and no inbox.
async fn a_new_article_reaches_the_followers_streams(app: TestApp) {
    let (anna, bob, carl) = (app.register("anna").await, app.register("bob").await, app.register("carl").await);
    app.post("/api/profiles/bob/follow", Some(&anna), json!({})).await;
    let mut follower = SseClient::open(&app.base, &anna, None).await.unwrap();
    follower.until_ready().await;
    let mut other = SseClient::open(&app.base, &carl, None).await.unwrap();
    other.until_ready().await;
    let first = slug_of(&app, &bob, "First news").await;
    let told = follower.notification().await.json();
    assert_eq!(
        (&told["kind"], &told["actor"]["username"], &told["article"]["slug"]),
        (&json!("article"), &json!("bob"), &json!(first))
    );
    drop(follower);
    let second = slug_of(&app, &bob, "Second news").await;
    let mut resumed = SseClient::open(&app.base, &anna, Some(&told["id"].to_string())).await.unwrap();
    let (missed, _) = resumed.resumed(1).await;
    assert_eq!(missed[0].json()["article"]["slug"], second, "missed, and given on resuming");
    assert!(other.next(Duration::from_millis(300)).await.is_none(), "not a follower: nothing");
    let (_, inbox) = app.get("/api/notifications", Some(&anna)).await;
    assert!(inbox["notifications"].as_array().unwrap().is_empty(), "not in the inbox: {inbox}");
}

on_both_backends!(
    the_inbox_lists_counts_and_marks_read,
    the_stream_delivers_in_order_and_resumes_exactly,
    a_new_article_reaches_the_followers_streams
);

// --- two instances on PostgreSQL and Redis ---

const SECRET: &str = "a shared secret for both instances, 32+ characters";

fn instance(dir: &std::path::Path, database: &str, redis: &str) -> Server {
    let env = [("DATABASE_URL", database), ("REDIS_URL", redis), ("CONDUIT_JWT_SECRET", SECRET)];
    Server::start_with(dir, &env)
}

async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.header("authorization", format!("Token {token}"));
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

async fn register(base: &str, name: &str) -> String {
    let body = json!({"user": {"username": name, "email": format!("{name}@example.com"), "password": "password123"}});
    let (status, answer) = call(base, reqwest::Method::POST, "/api/users", None, body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["user"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_one_instance_hears_of_writes_on_another_with_redis_and_without() {
    let database = conduit_store_postgres::testing::TestDatabase::create().await;
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = instance(dir.path(), &database.url, &redis.url());
    let b = instance(dir.path(), &database.url, &redis.url());
    let anna = register(&a.base, "anna").await;
    let mut stream = SseClient::open(&b.base, &anna, None).await.unwrap();
    stream.until_ready().await;
    let mut followers = Vec::new();
    for i in 0..3 {
        followers.push(register(&a.base, &format!("fan{i}")).await);
    }
    let follow = |i: usize| {
        let (base, token) = (a.base.clone(), followers[i].clone());
        async move {
            let (status, body) =
                call(&base, reqwest::Method::POST, "/api/profiles/anna/follow", Some(&token), json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    follow(0).await;
    assert_eq!(stream.notification().await.json()["actor"]["username"], "fan0", "through Redis");

    redis.stop();
    let started = Instant::now();
    follow(1).await;
    assert_eq!(stream.notification().await.json()["actor"]["username"], "fan1", "with Redis away: from the database");
    eprintln!("delivered without Redis in {:?}", started.elapsed());

    redis.resume();
    follow(2).await;
    assert_eq!(stream.notification().await.json()["actor"]["username"], "fan2", "and after it is back");
    drop(stream);
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

/// 40 clients hold streams on instance A while notifications are written through B; A is
/// killed with SIGKILL mid-way, and each client reconnects to B with its last id. Every client
/// ends with every one of its notifications exactly once, in order, as its inbox lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_moved_by_a_kill_miss_nothing_and_get_nothing_twice() {
    const CLIENTS: usize = 40;
    const ROUNDS: usize = 12;
    let database = conduit_store_postgres::testing::TestDatabase::create().await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = instance(dir.path(), &database.url, &redis.url());
    let b = instance(dir.path(), &database.url, &redis.url());
    let writer = register(&b.base, "writer").await;
    let mut readers = Vec::new();
    for i in 0..CLIENTS {
        let token = register(&b.base, &format!("reader{i}")).await;
        let slug = {
            let body = json!({"article": {"title": format!("Post {i}"), "description": "d", "body": "b"}});
            let (status, answer) = call(&b.base, reqwest::Method::POST, "/api/articles", Some(&token), body).await;
            assert_eq!(status, StatusCode::CREATED, "{answer}");
            answer["article"]["slug"].as_str().unwrap().to_owned()
        };
        readers.push((token, slug));
    }

    // Each client: read from A until it fails, then from B, resuming from its last id, until
    // it holds ROUNDS notifications.
    let clients: Vec<_> = readers
        .iter()
        .map(|(token, _)| {
            let (token, a_base, b_base) = (token.clone(), a.base.clone(), b.base.clone());
            tokio::spawn(async move {
                let mut got: Vec<i64> = Vec::new();
                let mut stream = SseClient::open(&a_base, &token, None).await.unwrap();
                stream.until_ready().await;
                let mut moved = false;
                let deadline = Instant::now() + Duration::from_secs(60);
                while got.len() < ROUNDS && Instant::now() < deadline {
                    match stream.next(Duration::from_secs(5)).await {
                        Some(event) if event.event == "notification" => got.push(event.number()),
                        Some(event) => assert_ne!(event.event, "reset", "nothing was dropped"),
                        None => {
                            assert!(!moved, "the stream on B ended too");
                            let last = stream.last_id.clone();
                            stream = SseClient::open(&b_base, &token, last.as_deref()).await.unwrap();
                            moved = true;
                        }
                    }
                }
                (got, moved)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    for round in 0..ROUNDS {
        if round == ROUNDS / 2 {
            a.child.kill().unwrap();
            a.child.wait().unwrap();
        }
        let writes = readers.iter().map(|(_, slug)| {
            let (base, writer, slug) = (b.base.clone(), writer.clone(), slug.clone());
            async move {
                let body = json!({"comment": {"body": format!("round {round}")}});
                let path = format!("/api/articles/{slug}/comments");
                assert_eq!(call(&base, reqwest::Method::POST, &path, Some(&writer), body).await.0, StatusCode::CREATED);
            }
        });
        futures::future::join_all(writes).await;
    }

    let mut moved = 0;
    for ((token, _), client) in readers.iter().zip(clients) {
        let (got, was_moved) = client.await.unwrap();
        moved += usize::from(was_moved);
        let (_, inbox) =
            call(&b.base, reqwest::Method::GET, "/api/notifications?limit=100", Some(token), Value::Null).await;
        let mut listed: Vec<i64> =
            inbox["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect();
        listed.reverse();
        let unique: BTreeSet<i64> = got.iter().copied().collect();
        assert_eq!(unique.len(), got.len(), "nothing twice: {got:?}");
        assert_eq!(got, listed, "every notification, in order");
    }
    assert_eq!(moved, CLIENTS, "every client was moved by the kill");
}

/// SIGTERM ends open streams at once (their clients see the end and reconnect elsewhere), and
/// the server exits cleanly well within its grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &[("CONDUIT_JWT_SECRET", SECRET)]);
    let anna = register(&server.base, "anna").await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut stream = SseClient::open(&server.base, &anna, None).await.unwrap();
        stream.until_ready().await;
        streams.push(stream);
    }
    let started = Instant::now();
    server.signal_term();
    for stream in &mut streams {
        assert!(stream.next(WITHIN).await.is_none(), "the stream ended");
    }
    let mut server = server;
    assert!(server.wait().success(), "a clean exit");
    assert!(started.elapsed() < Duration::from_secs(5), "within the grace: {:?}", started.elapsed());
}
