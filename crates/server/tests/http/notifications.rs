//! Notifications over real HTTP: the inbox, and the Server-Sent Events stream read by a real
//! HTTP client (a `reqwest` response read chunk by chunk and parsed as a browser's
//! `EventSource` parses it), on both backends; then two `conduit` processes on PostgreSQL and
//! Redis: a stream on one hears of writes on the other, with Redis and without it, and clients
//! moved by a `kill -9` of their instance miss nothing and get nothing twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::process::{RedisServer, Server};
use crate::common::{TestApp, error_messages};

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
    /// Blocks of comment lines only (keep-alives) read so far.
    pub comments: usize,
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
        Ok(SseClient { response, buffer: String::new(), last_id: last_id.map(str::to_owned), comments: 0 })
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
                    self.comments += 1; // a keep-alive comment
                    continue;
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

/// An idle stream is sent a comment line every `CONDUIT_NOTIFICATIONS_KEEP_ALIVE`, so that a
/// proxy does not close it, and one that is sent events gets them too.
#[tokio::test]
async fn an_idle_stream_is_sent_keep_alive_comments() {
    let app =
        TestApp::sqlite_with(|config| config.accounts.notifications_keep_alive = Duration::from_millis(200)).await;
    let anna = app.register("anna").await;
    let bob = app.register("bob").await;
    let mut stream = SseClient::open(&app.base, &anna, None).await.unwrap();
    stream.until_ready().await;
    assert!(stream.next(Duration::from_millis(1100)).await.is_none(), "no event while idle");
    let idle = stream.comments;
    assert!((3..=7).contains(&idle), "{idle} keep-alive comments in 1.1 s at one per 0.2 s");
    let post = slug_of(&app, &anna, "A post").await;
    for _ in 0..4 {
        let path = format!("/api/articles/{post}/comments");
        assert_eq!(app.post(&path, Some(&bob), json!({"comment": {"body": "hi"}})).await.0, StatusCode::CREATED);
        assert_eq!(stream.notification().await.json()["kind"], "comment");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(stream.next(Duration::from_millis(500)).await.is_none());
    assert!(stream.comments > idle, "keep-alives go on beside events");
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

/// A notification written through this instance reaches its streams as the write hands it on,
/// not read back from the database, and reads exactly as the database gives it later (to a
/// resuming stream and in the inbox): for a follow, a comment (its excerpt cut at 200
/// characters, not bytes), a reply, a favorite (grouped) and a new article.
async fn a_write_here_hands_its_notifications_to_the_streams_as_the_database_has_them(app: TestApp) {
    let (anna, bob, carl) = (app.register("anna").await, app.register("bob").await, app.register("carl").await);
    let post = slug_of(&app, &anna, "A post").await;
    app.post(&format!("/api/articles/{post}/comments"), Some(&carl), json!({"comment": {"body": "first"}})).await;
    app.post("/api/profiles/bob/follow", Some(&anna), json!({})).await;
    let mut annas = SseClient::open(&app.base, &anna, None).await.unwrap();
    annas.until_ready().await;
    let mut carls = SseClient::open(&app.base, &carl, None).await.unwrap();
    carls.until_ready().await;
    // The three written while no stream was open (anna's article, carl's comment, anna's
    // follow) are read by the tail once a stream opens.
    let deadline = Instant::now() + WITHIN;
    let mut before = notification_counts(&app).await;
    while before.1 < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        before = notification_counts(&app).await;
    }
    assert_eq!(before, (0, 3), "read back: what was written with no stream open");
    // Carl's comment comes live when the tail had not read it yet as anna's stream opened.
    if let Some(early) = annas.next(Duration::from_millis(300)).await {
        assert_eq!(early.json()["kind"], "comment", "{early:?}");
    }
    let start = annas.last_id.clone().unwrap();

    let long = "é".repeat(150) + &"x".repeat(100);
    app.post("/api/profiles/anna/follow", Some(&bob), json!({})).await;
    let path = format!("/api/articles/{post}/comments");
    assert_eq!(app.post(&path, Some(&bob), json!({"comment": {"body": long}})).await.0, StatusCode::CREATED);
    app.post(&format!("/api/articles/{post}/favorite"), Some(&bob), json!({})).await;
    app.post(&format!("/api/articles/{post}/favorite"), Some(&carl), json!({})).await;
    let news = slug_of(&app, &bob, "Bob's news").await;
    let mut live = Vec::new();
    for _ in 0..5 {
        live.push(annas.notification().await);
    }
    let reply = carls.notification().await.json();
    assert_eq!((&reply["kind"], &reply["actor"]["username"]), (&json!("reply"), &json!("bob")));
    let kinds: Vec<Value> = live.iter().map(|e| e.json()["kind"].clone()).collect();
    assert_eq!(kinds, [json!("follow"), json!("comment"), json!("favorite"), json!("favorite"), json!("article")]);
    let excerpt = live[1].json()["comment"]["excerpt"].as_str().unwrap().to_owned();
    assert_eq!(excerpt.chars().count(), 200, "200 characters, cut on a character");
    assert_eq!(live[3].json()["others"], 1, "carl and one other");
    assert_eq!(live[4].json()["article"], json!({"slug": news, "title": "Bob's news"}));

    let after = notification_counts(&app).await;
    // Each went out once, by one way or the other. The tail's own look every 100 ms can read
    // one between its commit and its hand-off (the write reads its article back meanwhile): a
    // race that loses nothing, seen once in a dozen writes.
    let (handed, read) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(handed + read, 6, "each once: {before:?} -> {after:?}");
    assert!(handed >= 4, "handed on by their writes, not read back: {before:?} -> {after:?}");

    let mut resumed = SseClient::open(&app.base, &anna, Some(&start)).await.unwrap();
    let (replayed, _) = resumed.resumed(4).await;
    let (_, inbox) = app.get("/api/notifications", Some(&anna)).await;
    let inbox: Vec<Value> = inbox["notifications"].as_array().unwrap().clone();
    // The first favorite was regrouped into the second (a new id): the database keeps 4.
    let live: Vec<Value> =
        live.iter().map(SseEvent::json).filter(|n| n["others"] != 0 || n["kind"] != "favorite").collect();
    let replayed: Vec<Value> = replayed.iter().map(SseEvent::json).collect();
    assert_eq!(live, replayed, "live as the database gives it to a resuming stream");
    for n in live.iter().filter(|n| n["kind"] != "article") {
        let listed = inbox.iter().find(|i| i["id"] == n["id"]).unwrap_or_else(|| panic!("{n} in {inbox:?}"));
        assert_eq!(listed, n, "live as the inbox lists it");
    }
}

/// Writes that commit in parallel hand their notifications on in whatever order they finish,
/// and some finish out of id order: the stream still gets each exactly once, in id order, as
/// the inbox lists them (what is not next in order waits, or is read from the database).
async fn parallel_writes_reach_a_stream_once_each_in_id_order(app: TestApp) {
    let anna = app.register("anna").await;
    let post = slug_of(&app, &anna, "A busy post").await;
    let mut stream = SseClient::open(&app.base, &anna, None).await.unwrap();
    stream.until_ready().await;
    let mut writers = Vec::new();
    for name in ["bob", "carl", "dora", "eve"] {
        writers.push(app.register(name).await);
    }
    let path = format!("/api/articles/{post}/comments");
    let comments = writers.iter().flat_map(|token| (0..6).map(move |i| (token, i))).map(|(token, i)| {
        let (app, path) = (&app, &path);
        async move { app.post(path, Some(token), json!({"comment": {"body": format!("c{i}")}})).await.0 }
    });
    let statuses = futures::future::join_all(comments).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED), "{statuses:?}");
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(stream.notification().await.number());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    assert!(stream.next(Duration::from_millis(300)).await.is_none(), "nothing twice");
    let (_, inbox) = app.get("/api/notifications?limit=50", Some(&anna)).await;
    let mut listed: Vec<i64> =
        inbox["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect();
    listed.reverse();
    assert_eq!(ids, listed, "each one the inbox lists");
}

/// What `/metrics` says of the notifications handed to this instance's streams: (handed on by
/// a write here, read back from the database).
async fn notification_counts(app: &TestApp) -> (i64, i64) {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let count = |name: &str| {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (count("conduit_notifications_handed_total "), count("conduit_notifications_read_total "))
}

/// The streams open on the server, as its `/metrics` says.
async fn open_streams(app: &TestApp) -> i64 {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("conduit_notification_streams ")).expect("the gauge");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// What a raw HTTP/1.1 response holds: the chunked body decoded, then split into events.
fn sse_of_raw(raw: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(raw);
    let (_, mut body) = text.split_once("\r\n\r\n").expect("a response head");
    let mut decoded = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        decoded.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or("");
    }
    decoded
        .split("\n\n")
        .filter_map(|block| {
            let mut event = SseEvent::default();
            for line in block.lines() {
                match line.split_once(": ") {
                    Some(("event", v)) => event.event = v.to_owned(),
                    Some(("id", v)) => event.id = Some(v.to_owned()),
                    Some(("data", v)) => event.data = v.to_owned(),
                    _ => {}
                }
            }
            (!event.event.is_empty()).then_some(event)
        })
        .collect()
}

/// Writes `n` favorite notifications of `article` (slug) for `user` straight into the
/// database, in one statement: the flood a test needs to fill a stalled stream's buffers (the
/// kernel's alone take megabytes on loopback) in well under a second.
async fn flood(url: &str, user: &str, actor: &str, article: &str, n: i64) {
    use sqlx::Connection;
    let sql = "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < $5)
               INSERT INTO notifications (user_id, kind, actor_id, article_id, created_at)
               SELECT (SELECT id FROM users WHERE username = $1), 'favorite',
                      (SELECT id FROM users WHERE username = $2), (SELECT id FROM articles WHERE slug = $3), $4
               FROM k";
    let now = chrono::Utc::now();
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).bind(user).bind(actor).bind(article).bind(now).bind(n).execute(&mut db).await.unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).bind(user).bind(actor).bind(article).bind(now).bind(n).execute(&mut db).await.unwrap();
    }
}

/// 25,000 notifications for one person at once (written past the trim, straight into
/// the database, to fill megabytes of socket buffers): a stream whose client stopped reading (a
/// socket with a small receive buffer that reads nothing after its request) is dropped once it
/// has lagged for `LAG_LIMIT` and another notification comes for it, holding no more than its
/// queue meanwhile; a stream of the same person that reads goes on, in id order, catching up
/// from the database (here told to start over: more was missed than a person keeps). The
/// dropped client gets what was buffered for it, in order, and `reset` when it comes back.
async fn a_stream_that_stops_reading_is_dropped_and_told_to_start_over(app: TestApp, url: String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const N: i64 = 25_000;
    let anna = app.register("anna").await;
    let bob = app.register("bob").await;
    // A long title: every event is large (about 700 bytes): the flood is 17 MB.
    let post = slug_of(&app, &anna, &"A title that goes on ".repeat(12)).await;
    let address: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(address).await.unwrap();
    let request =
        format!("GET /api/notifications/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Token {anna}\r\n\r\n");
    slow.write_all(request.as_bytes()).await.unwrap();
    let mut healthy = SseClient::open(&app.base, &anna, None).await.unwrap();
    healthy.until_ready().await;
    let deadline = Instant::now() + WITHIN;
    while open_streams(&app).await != 2 {
        assert!(Instant::now() < deadline, "both streams open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    flood(&url, "anna", "bob", &post, N).await;
    let newest = app.store.newest_notification().await.unwrap();
    let (mut seen, mut resets) = (Vec::new(), 0);
    while seen.last().is_none_or(|last| *last < newest) {
        let event = healthy.next(WITHIN).await.expect("the reading stream goes on");
        resets += usize::from(event.event == "reset");
        seen.push(event.number());
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order, none twice");
    assert_eq!(*seen.last().unwrap(), newest, "the reading stream caught up");
    eprintln!("the reading stream: {} events, {resets} resets", seen.len());

    tokio::time::sleep(conduit_server::notify::hub::LAG_LIMIT + Duration::from_millis(500)).await;
    app.post("/api/profiles/anna/follow", Some(&bob), json!({})).await;
    assert_eq!(healthy.notification().await.json()["kind"], "follow", "the reading stream gets the next one");
    let deadline = Instant::now() + WITHIN;
    while open_streams(&app).await != 1 {
        assert!(Instant::now() < deadline, "the stream that stopped reading was dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut raw = Vec::new();
    let _ = tokio::time::timeout(WITHIN, slow.read_to_end(&mut raw)).await;
    let got: Vec<i64> = sse_of_raw(&raw).iter().filter(|e| e.event == "notification").map(SseEvent::number).collect();
    assert!(!got.is_empty() && (got.len() as i64) < N, "it got some, not all: {}", got.len());
    assert!(got.windows(2).all(|w| w[0] < w[1]), "what it got, in order");
    let last = got.last().unwrap().to_string();
    let mut resumed = SseClient::open(&app.base, &anna, Some(&last)).await.unwrap();
    assert_eq!(resumed.next(WITHIN).await.unwrap().event, "reset");
    assert_eq!(resumed.next(WITHIN).await.unwrap().event, "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_stream_that_stops_reading_is_dropped_and_told_to_start_over() {
    let mut url = String::new();
    let app = TestApp::sqlite_with(|config| url = config.database_url.clone()).await;
    a_stream_that_stops_reading_is_dropped_and_told_to_start_over(app, url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_stream_that_stops_reading_is_dropped_and_told_to_start_over() {
    let mut url = String::new();
    let app = TestApp::postgres_with(|config| url = config.database_url.clone()).await;
    a_stream_that_stops_reading_is_dropped_and_told_to_start_over(app, url).await;
}

/// The attack of an account with a fresh login: streams opened one after another (from as many
/// addresses as it likes, past the per-address cap) to hold the instance's memory. The account
/// gets `STREAMS_PER_USER`, then 429 in the API's error shape; closing one frees its place.
async fn an_account_cannot_hold_the_instance_with_streams(app: TestApp) {
    let anna = app.register("anna").await;
    let most = conduit_server::notify::hub::STREAMS_PER_USER;
    let mut held = Vec::new();
    for _ in 0..most {
        let mut stream = SseClient::open(&app.base, &anna, None).await.unwrap();
        stream.until_ready().await;
        held.push(stream);
    }
    let (status, body) = SseClient::open(&app.base, &anna, None).await.err().expect("refused");
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(error_messages(&body, "stream")[0].contains("close one"), "{body}");
    let bob = app.register("bob").await;
    assert!(SseClient::open(&app.base, &bob, None).await.is_ok(), "another account is not held back");
    drop(held.pop());
    let deadline = Instant::now() + WITHIN;
    loop {
        match SseClient::open(&app.base, &anna, None).await {
            Ok(_) => break,
            Err((StatusCode::TOO_MANY_REQUESTS, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("a closed stream frees its place: {other:?}"),
        }
    }
}

on_both_backends!(
    an_account_cannot_hold_the_instance_with_streams,
    the_inbox_lists_counts_and_marks_read,
    the_stream_delivers_in_order_and_resumes_exactly,
    a_new_article_reaches_the_followers_streams,
    a_write_here_hands_its_notifications_to_the_streams_as_the_database_has_them,
    parallel_writes_reach_a_stream_once_each_in_id_order
);

// --- ids committed out of order (PostgreSQL) ---

/// A notification whose transaction is still open holds back the ones after it (they are not
/// sent before it, or a client resuming from a later id would never get it), and is sent first
/// when it commits; one whose transaction rolls back holds nothing back after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_keeps_id_order_while_an_earlier_write_is_uncommitted() {
    use sqlx::Connection;
    let mut url = String::new();
    let app = TestApp::postgres_with(|config| url = config.database_url.clone()).await;
    let anna = app.register("anna").await;
    let carl = app.register("carl").await;
    for name in ["bob", "dan"] {
        app.register(name).await;
    }
    let mut stream = SseClient::open(&app.base, &anna, None).await.unwrap();
    stream.until_ready().await;
    let mut raw = sqlx::PgConnection::connect(&url).await.unwrap();
    let held_follow = |who: &'static str| {
        format!(
            "INSERT INTO notifications (user_id, kind, actor_id, created_at)
             SELECT a.id, 'follow', b.id, now() FROM users a, users b WHERE a.username = 'anna' AND b.username = '{who}'"
        )
    };
    let mut open = raw.begin().await.unwrap();
    sqlx::query(&held_follow("bob")).execute(&mut *open).await.unwrap();
    app.post("/api/profiles/anna/follow", Some(&carl), json!({})).await;
    assert!(stream.next(Duration::from_millis(500)).await.is_none(), "carl's waits for the earlier id");
    open.commit().await.unwrap();
    app.post("/api/profiles/anna/follow", Some(&app.register("eve").await), json!({})).await;
    let order: Vec<Value> = [stream.notification().await, stream.notification().await, stream.notification().await]
        .iter()
        .map(|e| e.json()["actor"]["username"].clone())
        .collect();
    assert_eq!(order, [json!("bob"), json!("carl"), json!("eve")], "in id order, once each");

    let mut rolled = raw.begin().await.unwrap();
    sqlx::query(&held_follow("dan")).execute(&mut *rolled).await.unwrap();
    rolled.rollback().await.unwrap();
    app.post("/api/profiles/anna/follow", Some(&app.register("fay").await), json!({})).await;
    assert_eq!(stream.notification().await.json()["actor"]["username"], "fay", "past the rolled-back id");
}

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

/// 100 clients (`CONDUIT_TEST_KILL_CLIENTS` for more: BENCHMARKS.md has a run with 1,000) hold
/// streams on instance A while notifications are written through B; A is killed with SIGKILL
/// mid-way, and each client reconnects to B with its last id. Every client ends with every one
/// of its notifications exactly once, in order, as its inbox lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_moved_by_a_kill_miss_nothing_and_get_nothing_twice() {
    let clients_wanted = std::env::var("CONDUIT_TEST_KILL_CLIENTS").ok().and_then(|n| n.parse().ok());
    let wanted: usize = clients_wanted.unwrap_or(100);
    const ROUNDS: usize = 12;
    let database = conduit_store_postgres::testing::TestDatabase::create().await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut a = instance(dir.path(), &database.url, &redis.url());
    let b = instance(dir.path(), &database.url, &redis.url());
    let writer = register(&b.base, "writer").await;
    let mut readers = Vec::new();
    for i in 0..wanted {
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
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = readers
        .iter()
        .map(|(token, _)| {
            let (token, a_base, b_base, ready) = (token.clone(), a.base.clone(), b.base.clone(), ready.clone());
            tokio::spawn(async move {
                let mut got: Vec<i64> = Vec::new();
                let mut stream = SseClient::open(&a_base, &token, None).await.unwrap();
                stream.until_ready().await;
                ready.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut moved = false;
                let deadline = Instant::now() + Duration::from_secs(300);
                while got.len() < ROUNDS && Instant::now() < deadline {
                    // Long enough for a round of writes to every client (a thousand of them
                    // take seconds on a debug build); a killed instance ends its streams at once.
                    match stream.next(Duration::from_secs(60)).await {
                        Some(event) if event.event == "notification" => got.push(event.number()),
                        Some(event) => assert_ne!(event.event, "reset", "nothing was dropped"),
                        None => {
                            assert!(!moved, "the stream on B ended too, after {} of {ROUNDS}", got.len());
                            let last = stream.last_id.clone();
                            // As EventSource does: a refusal (503 while the survivor sheds the
                            // crowd reconnecting at once) is tried again a little later.
                            stream = loop {
                                match SseClient::open(&b_base, &token, last.as_deref()).await {
                                    Ok(stream) => break stream,
                                    Err((StatusCode::SERVICE_UNAVAILABLE, _)) => {
                                        tokio::time::sleep(Duration::from_millis(200)).await;
                                    }
                                    Err(other) => panic!("reconnecting: {other:?}"),
                                }
                            };
                            moved = true;
                        }
                    }
                }
                (got, moved)
            })
        })
        .collect();
    // Every stream open before the first write: a stream gets what comes after it opened.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(std::sync::atomic::Ordering::Relaxed) < wanted {
        assert!(Instant::now() < deadline, "the streams opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
        // A few at a time, as many writers would: all at once, the server sheds some (503).
        futures::StreamExt::collect::<Vec<()>>(futures::StreamExt::buffer_unordered(futures::stream::iter(writes), 16))
            .await;
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
    assert_eq!(moved, wanted, "every client was moved by the kill");
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
