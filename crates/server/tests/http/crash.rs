//! Crash safety on SQLite: `kill -9` in the middle of a write load, then start again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::process::Server;
use sqlx::ConnectOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let register =
        serde_json::json!({"user": {"username": "jake", "email": "jake@example.com", "password": "password123"}});
    let body: serde_json::Value =
        client.post(format!("{base}/api/users")).json(&register).send().await.unwrap().json().await.unwrap();
    let token = body["user"]["token"].as_str().unwrap().to_owned();

    // Eight writers publish articles as fast as they can; each acknowledged slug is kept.
    // A writer stops at its first failure, saying why in `stopped`.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stopped: Arc<Mutex<Vec<String>>> = Arc::default();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, base, token, acknowledged) = (client.clone(), base.clone(), token.clone(), acknowledged.clone());
            let stopped = stopped.clone();
            tokio::spawn(async move {
                let stop = |why: String| stopped.lock().unwrap().push(format!("writer {w}: {why}"));
                for i in 0.. {
                    let article = serde_json::json!({"article": {
                        "title": format!("Crash {w} {i}"), "description": "d", "body": "b", "tagList": ["crash", format!("w{w}")]
                    }});
                    let sent = client
                        .post(format!("{base}/api/articles"))
                        .header("authorization", format!("Token {token}"))
                        .json(&article)
                        .send()
                        .await;
                    let response = match sent {
                        Ok(response) => response,
                        Err(e) => return stop(format!("{e}")),
                    };
                    if response.status() != 201 {
                        return stop(format!("{} {}", response.status(), response.text().await.unwrap_or_default()));
                    }
                    let body = match response.json::<serde_json::Value>().await {
                        Ok(body) => body,
                        Err(e) => return stop(format!("{e}")),
                    };
                    acknowledged.lock().unwrap().push(body["article"]["slug"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    // Let the load build up (all eight still writing), then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 100 {
        let stopped = stopped.lock().unwrap().clone();
        assert!(stopped.is_empty(), "writers stopped before the kill: {stopped:?}");
        let count = acknowledged.lock().unwrap().len();
        assert!(Instant::now() < deadline, "only {count} writes acknowledged in 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 100);

    // The database is sound, and starts again without repair.
    let db = dir.path().join("conduit.db");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).connect().await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let server = Server::start(dir.path());
    for slug in &acknowledged {
        let response = client.get(format!("{}/api/articles/{slug}", server.base)).send().await.unwrap();
        assert_eq!(response.status(), 200, "acknowledged article {slug} was lost");
        let article: serde_json::Value = response.json().await.unwrap();
        assert_eq!(article["article"]["tagList"][0], "crash", "its tags were written with it");
    }
    assert!(server.terminate().success());
}
