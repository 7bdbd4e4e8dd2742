//! The search index's segments: `analyze` (run by `conduit seed`, a restore and `conduit
//! analyze`) merges FTS5's segments into one, and so do the merge steps a live server takes
//! while writes go on (`conduit_server::ops::search_index`); the index still finds what it did.

use std::str::FromStr;

use conduit_domain::model::UserId;
use conduit_domain::{Email, Slug, Username};
use conduit_store::{NewArticle, NewUser, Outgoing, Store};
use conduit_store_sqlite::testing::{fresh_store, stop_search_automerge};
use sqlx::{ConnectOptions, Connection};

const SEGMENTS: &str = "SELECT count(DISTINCT segid) FROM article_search_idx";
const MATCHES: &str = "SELECT count(*) FROM article_search WHERE article_search MATCH 'rust AND async'";

async fn author(store: &dyn Store) -> UserId {
    let new = NewUser {
        username: Username::parse("jake").unwrap(),
        email: Email::parse("jake@example.com").unwrap(),
        password_hash: "x".into(),
    };
    store.create_user(&new, &Outgoing::default()).await.unwrap().id
}

/// Article `i`, its own commit, so its own small segment.
async fn publish(store: &dyn Store, author: UserId, i: usize) {
    let new = NewArticle {
        title: format!("Rust note {i}"),
        description: "d".into(),
        body: format!("async body {i}"),
        tags: vec![],
    };
    store.create_article(author, &Slug::parse(&format!("rust-note-{i}")).unwrap(), &new, None).await.unwrap();
}

async fn sqlite3(dir: &tempfile::TempDir) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().connect().await.unwrap()
}

#[tokio::test]
async fn analyze_merges_the_search_index_into_one_segment() {
    let (store, dir) = fresh_store().await;
    let author = author(&store).await;
    for i in 0..12 {
        publish(&store, author, i).await;
    }
    let mut sqlite3 = sqlite3(&dir).await;
    let (segments, matches) = (SEGMENTS, MATCHES);
    let before: i64 = sqlx::query_scalar(segments).fetch_one(&mut sqlite3).await.unwrap();
    assert!(before > 1, "a commit per article leaves several segments: {before}");
    store.analyze().await.unwrap();
    let after: i64 = sqlx::query_scalar(segments).fetch_one(&mut sqlite3).await.unwrap();
    assert_eq!(after, 1, "analyze merges the index into one segment (from {before})");
    assert_eq!(sqlx::query_scalar::<_, i64>(matches).fetch_one(&mut sqlite3).await.unwrap(), 12);
    sqlx::query("INSERT INTO article_search(article_search) VALUES('integrity-check')")
        .execute(&mut sqlite3)
        .await
        .unwrap();
    sqlite3.close().await.unwrap();
}

#[tokio::test]
async fn merge_steps_bring_the_index_to_one_segment_while_writes_go_on() {
    let (store, dir) = fresh_store().await;
    stop_search_automerge(dir.path()).await;
    let author = author(&store).await;
    for i in 0..12 {
        publish(&store, author, i).await;
    }
    let before = store.search_segments().await.unwrap().unwrap();
    assert!(before >= 12, "a segment per commit: {before}");
    store.merge_search_index(true).await.unwrap();
    let mut written = 12;
    for _ in 0..200 {
        if store.search_segments().await.unwrap().unwrap() <= 2 {
            break;
        }
        publish(&store, author, written).await;
        written += 1;
        store.merge_search_index(false).await.unwrap();
    }
    let after = store.search_segments().await.unwrap().unwrap();
    assert!(after <= 2, "the merge steps end with the index in one or two segments: {before} -> {after}");
    let mut sqlite3 = sqlite3(&dir).await;
    assert_eq!(sqlx::query_scalar::<_, i64>(MATCHES).fetch_one(&mut sqlite3).await.unwrap(), written as i64);
    sqlx::query("INSERT INTO article_search(article_search) VALUES('integrity-check')")
        .execute(&mut sqlite3)
        .await
        .unwrap();
    sqlite3.close().await.unwrap();
}
