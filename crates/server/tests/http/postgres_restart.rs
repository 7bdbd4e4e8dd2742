//! PostgreSQL restarted under a mixed read/write load against a running `conduit`: requests
//! fail fast with 503 while it is down (the database's 503, never the request timeout's),
//! readiness says so, and once PostgreSQL is back service returns without restarting
//! `conduit`: at most the pool's connections (each dead since the restart, failing once and
//! dropped) fail a write before one succeeds. No acknowledged write is lost. Then a restart
//! while idle: the first request afterwards already succeeds.
//!
//! Counts, not times: the database, the server and the load share two cores here, so how long
//! recovery takes is printed, not asserted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::process::{PostgresServer, Server};
use serde_json::{Value, json};

const SECRET: &str = "a secret for the restart test, 32+ characters";
/// `conduit`'s PostgreSQL pool size (the default of `CONDUIT_DB_POOL_SIZE`, set here explicitly).
const POOL_SIZE: usize = 16;
/// How long the load may take to show what it must (progress, recovery): only so that a broken
/// server fails the test instead of hanging it. Nothing is measured against it.
const PATIENCE: Duration = Duration::from_secs(60);
/// What the server answers for a request that found the database unavailable.
const DATABASE_UNAVAILABLE: &str = "temporarily unavailable, retry shortly";

/// What the load saw: every status by count, the 503s by message, the slowest answer, and the
/// writes that got 2xx.
#[derive(Default)]
struct Outcomes {
    statuses: BTreeMap<u16, usize>,
    unavailable: BTreeMap<String, usize>,
    slowest: Duration,
    articles: Vec<String>,
    comments: Vec<i64>,
    failures: Vec<String>,
}

struct Load {
    client: reqwest::Client,
    base: String,
    token: String,
    commented: String,
    outcomes: Mutex<Outcomes>,
    stop: AtomicBool,
}

impl Load {
    async fn send(&self, request: reqwest::RequestBuilder) -> Option<Value> {
        let started = Instant::now();
        let result = request.header("authorization", format!("Token {}", self.token)).send().await;
        let elapsed = started.elapsed();
        let status = {
            let mut outcomes = self.outcomes.lock().unwrap();
            outcomes.slowest = outcomes.slowest.max(elapsed);
            match &result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    *outcomes.statuses.entry(status).or_default() += 1;
                    status
                }
                Err(e) => {
                    outcomes.failures.push(format!("no answer after {elapsed:?}: {e}"));
                    return None;
                }
            }
        };
        let response = result.ok()?;
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 503 {
            let error_shape = body["errors"].as_object().is_some_and(|e| !e.is_empty());
            let mut outcomes = self.outcomes.lock().unwrap();
            if !error_shape {
                outcomes.failures.push(format!("503 without the error shape: {body}"));
            }
            let messages = body["errors"].as_object().map(|e| Value::Object(e.clone()).to_string());
            *outcomes.unavailable.entry(messages.unwrap_or_default()).or_default() += 1;
        } else if !(200..300).contains(&status) {
            self.outcomes.lock().unwrap().failures.push(format!("{status}: {body}"));
        }
        (200..300).contains(&status).then_some(body)
    }

    async fn writer(self: Arc<Self>, worker: usize) {
        let mut n = 0;
        while !self.stop.load(Ordering::Relaxed) {
            n += 1;
            let article = json!({"article": {"title": format!("Restart {worker} {n}"), "description": "d", "body": "b", "tagList": ["restart"]}});
            let created = self.send(self.client.post(format!("{}/api/articles", self.base)).json(&article)).await;
            if let Some(created) = created {
                let slug = created["article"]["slug"].as_str().unwrap().to_owned();
                self.outcomes.lock().unwrap().articles.push(slug);
            }
            let comment = json!({"comment": {"body": format!("comment {worker} {n}")}});
            let url = format!("{}/api/articles/{}/comments", self.base, self.commented);
            if let Some(created) = self.send(self.client.post(url).json(&comment)).await {
                self.outcomes.lock().unwrap().comments.push(created["comment"]["id"].as_i64().unwrap());
            }
        }
    }

    async fn reader(self: Arc<Self>) {
        while !self.stop.load(Ordering::Relaxed) {
            self.send(self.client.get(format!("{}/api/articles?limit=5", self.base))).await;
            self.send(self.client.get(format!("{}/api/user", self.base))).await;
        }
    }

    fn successes(&self) -> usize {
        let outcomes = self.outcomes.lock().unwrap();
        outcomes.statuses.iter().filter(|(status, _)| (200..300).contains(*status)).map(|(_, n)| n).sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_load_fails_fast_recovers_and_loses_no_acknowledged_write() {
    let postgres = PostgresServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = postgres.url();
    // Default timeouts: a request waits at most 5 s for a connection, and 30 s in all.
    let pool_size = POOL_SIZE.to_string();
    let env = [("DATABASE_URL", url.as_str()), ("CONDUIT_JWT_SECRET", SECRET), ("CONDUIT_DB_POOL_SIZE", &pool_size)];
    let server = Server::start_with(dir.path(), &env);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap();
    let base = server.base.clone();

    let user = json!({"user": {"username": "restart", "email": "restart@example.com", "password": "password123"}});
    let registered: Value =
        client.post(format!("{base}/api/users")).json(&user).send().await.unwrap().json().await.unwrap();
    let token = registered["user"]["token"].as_str().unwrap().to_owned();
    let first = json!({"article": {"title": "Commented", "description": "d", "body": "b"}});
    let created: Value = client
        .post(format!("{base}/api/articles"))
        .header("authorization", format!("Token {token}"))
        .json(&first)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let commented = created["article"]["slug"].as_str().unwrap().to_owned();

    let load = Arc::new(Load {
        client: client.clone(),
        base: base.clone(),
        token,
        commented: commented.clone(),
        outcomes: Mutex::default(),
        stop: AtomicBool::new(false),
    });
    let mut workers = Vec::new();
    for worker in 0..4 {
        workers.push(tokio::spawn(load.clone().writer(worker)));
    }
    for _ in 0..2 {
        workers.push(tokio::spawn(load.clone().reader()));
    }

    let deadline = Instant::now() + PATIENCE;
    while load.successes() == 0 {
        assert!(Instant::now() < deadline, "the load made no progress before the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Down: readiness says so while the load keeps going.
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.stop();
        postgres
    })
    .await
    .unwrap();
    let ready = client.get(format!("{base}/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_ne!(ready["checks"]["database"]["status"], "ok", "{ready}");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Back (`pg_ctl -w start` returned: PostgreSQL accepts connections). Every connection in
    // the pool died with the old server; one that is used fails its query (a 503) and is
    // dropped, one idle for a while is pinged and replaced first. So at most the pool's
    // connections can fail a write before one succeeds; more means conduit keeps failing on
    // a server that is back (say, dead connections kept, or no new ones made).
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.resume();
        postgres
    })
    .await
    .unwrap();
    let back = Instant::now();
    let probe = json!({"comment": {"body": "probe"}});
    let mut failed_probes = Vec::new();
    loop {
        let answer = client
            .post(format!("{base}/api/articles/{commented}/comments"))
            .header("authorization", format!("Token {}", load.token))
            .json(&probe)
            .send()
            .await
            .unwrap();
        if answer.status() == 201 {
            let id = answer.json::<Value>().await.unwrap()["comment"]["id"].as_i64().unwrap();
            load.outcomes.lock().unwrap().comments.push(id);
            break;
        }
        failed_probes.push(answer.status().as_u16());
        assert!(
            failed_probes.len() <= POOL_SIZE,
            "{} writes failed after PostgreSQL was back, more than the {POOL_SIZE} pooled connections that died \
             with it: {failed_probes:?}",
            failed_probes.len()
        );
        assert!(back.elapsed() < PATIENCE, "no write succeeded after PostgreSQL came back: {failed_probes:?}");
    }
    let recovered_in = back.elapsed();
    eprintln!("writes succeeded again {recovered_in:?} after PostgreSQL was back; failed probes: {failed_probes:?}");
    assert_eq!(client.get(format!("{base}/health/ready")).send().await.unwrap().status(), 200);

    let during = load.successes();
    let deadline = Instant::now() + PATIENCE;
    while load.successes() <= during {
        assert!(Instant::now() < deadline, "no progress after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let outcomes = std::mem::take(&mut *load.outcomes.lock().unwrap());
    eprintln!(
        "statuses {:?}; 503s {:?}; slowest {:?}; recovered in {recovered_in:?}; {} articles and {} comments \
         acknowledged",
        outcomes.statuses,
        outcomes.unavailable,
        outcomes.slowest,
        outcomes.articles.len(),
        outcomes.comments.len()
    );
    let errors: Vec<String> =
        server.log.lock().unwrap().iter().filter(|line| line.contains("\"ERROR\"")).cloned().collect();
    assert!(outcomes.failures.is_empty(), "{:#?}\nthe server's errors: {errors:#?}", outcomes.failures);
    assert!(outcomes.statuses.get(&503).is_some_and(|n| *n > 0), "the outage was never seen: {:?}", outcomes.statuses);
    // Failing fast: every 503 is the database's (given up on within the 5 s acquire timeout);
    // none is the 30 s request timeout's, which a request waiting on the database would meet.
    let database_unavailable = json!({"server": [DATABASE_UNAVAILABLE]}).to_string();
    assert_eq!(
        outcomes.unavailable.keys().collect::<Vec<_>>(),
        [&database_unavailable],
        "503s other than the database's: {:?}",
        outcomes.unavailable
    );

    // Every acknowledged write is there.
    for slug in &outcomes.articles {
        let found = client.get(format!("{base}/api/articles/{slug}")).send().await.unwrap();
        assert_eq!(found.status(), 200, "acknowledged article {slug} is missing");
    }
    // Comments come a page at a time (500 by default): follow the cursor through all of them.
    let mut stored = std::collections::HashSet::new();
    let mut page = format!("{base}/api/articles/{commented}/comments");
    loop {
        let comments: Value = client.get(&page).send().await.unwrap().json().await.unwrap();
        stored.extend(comments["comments"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()));
        match comments["nextCursor"].as_str() {
            Some(cursor) => page = format!("{base}/api/articles/{commented}/comments?cursor={cursor}"),
            None => break,
        }
    }
    for id in &outcomes.comments {
        assert!(stored.contains(id), "acknowledged comment {id} is missing");
    }

    // A restart while nobody is asking: the pool's connections are all dead but idle, so each
    // is pinged on its next use and replaced; the first request afterwards succeeds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let postgres = tokio::task::spawn_blocking(move || {
        postgres.stop();
        postgres.resume();
        postgres
    })
    .await
    .unwrap();
    for path in ["/api/articles?limit=5", "/api/articles?limit=1", "/health/ready"] {
        let status = client.get(format!("{base}{path}")).send().await.unwrap().status();
        assert_eq!(status, 200, "{path} after a quiet restart");
    }
    drop(server);
    drop(postgres);
}
