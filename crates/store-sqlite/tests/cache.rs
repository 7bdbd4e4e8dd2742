//! The cache against changes from other processes. A second store on the same file stands for
//! `conduit user ...` run beside the server, and a bare connection for an operator's `sqlite3`:
//! neither tells the server anything, yet the server must never answer from what they changed.

use std::str::FromStr;

use conduit_domain::{Email, Slug, Username};
use conduit_store::{AccountChanges, NewArticle, NewUser, Outgoing, Store, UserChanges};
use conduit_store_sqlite::SqliteStore;
use conduit_store_sqlite::testing::fresh_store;
use sqlx::{ConnectOptions, Connection};

async fn jake(store: &dyn Store) -> conduit_domain::model::UserId {
    let new = NewUser {
        username: Username::parse("jake").unwrap(),
        email: Email::parse("jake@example.com").unwrap(),
        password_hash: "x".into(),
    };
    store.create_user(&new, &Outgoing::default()).await.unwrap().id
}

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("conduit.db").display())
}

#[tokio::test]
async fn the_server_caches_while_nothing_is_committed() {
    let (server, _dir) = fresh_store().await;
    let id = jake(&server).await;
    server.user_by_id(id).await.unwrap();
    assert!(server.serves_cached_user(id), "a second look with nothing committed must come from memory");
    server.update_user(id, &UserChanges { bio: Some(Some("x".into())), ..UserChanges::default() }).await.unwrap();
    assert!(!server.serves_cached_user(id), "a commit must drop the cache");
}

#[tokio::test]
async fn another_process_changing_a_user_is_seen_at_once() {
    let (server, dir) = fresh_store().await;
    let id = jake(&server).await;
    let cli = SqliteStore::connect(&url(&dir)).await.unwrap();
    for round in 0..20 {
        let before = server.user_by_id(id).await.unwrap().unwrap();
        assert_eq!(server.user_by_id(id).await.unwrap().unwrap(), before);
        let bio = format!("round {round}");
        cli.update_user(id, &UserChanges { bio: Some(Some(bio.clone())), ..UserChanges::default() }).await.unwrap();
        assert_eq!(server.user_by_id(id).await.unwrap().unwrap().bio, Some(bio));
    }
    server.user_by_id(id).await.unwrap();
    cli.set_account(&Username::parse("jake").unwrap(), &AccountChanges { role: None, active: Some(false), by: None })
        .await
        .unwrap()
        .unwrap();
    assert!(!server.user_by_id(id).await.unwrap().unwrap().active, "deactivation must hold at once");
}

#[tokio::test]
async fn plain_sql_from_outside_is_seen_at_once() {
    let (server, dir) = fresh_store().await;
    let id = jake(&server).await;
    let new = NewArticle { title: "T".into(), description: "d".into(), body: "b".into(), tags: vec![] };
    let created = server.create_article(id, &Slug::parse("t").unwrap(), &new, None).await.unwrap();
    let slug = Slug::parse(&created.slug).unwrap();
    server.user_by_id(id).await.unwrap();
    server.article(&slug, None).await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url(&dir)).unwrap();
    let mut sqlite3 = options.connect().await.unwrap();
    sqlx::query("UPDATE users SET token_version = token_version + 1 WHERE id = ?")
        .bind(id.get())
        .execute(&mut sqlite3)
        .await
        .unwrap();
    assert_eq!(server.user_by_id(id).await.unwrap().unwrap().token_version, 1);
    sqlx::query("UPDATE articles SET title = 'by hand' WHERE slug = ?")
        .bind(slug.as_str())
        .execute(&mut sqlite3)
        .await
        .unwrap();
    assert_eq!(server.article(&slug, None).await.unwrap().unwrap().title, "by hand");
    assert!(server.tags().await.unwrap().is_empty());
    sqlx::query("INSERT INTO article_tags (article_id, name, position) SELECT id, 'by-hand', 0 FROM articles")
        .execute(&mut sqlite3)
        .await
        .unwrap();
    assert_eq!(server.tags().await.unwrap(), ["by-hand"], "the tag list must hold at once too");
    sqlite3.close().await.unwrap();
}

#[tokio::test]
async fn closing_the_store_leaves_the_whole_database_in_its_one_file() {
    let (server, dir) = fresh_store().await;
    jake(&server).await;
    server.close().await;
    let wal = dir.path().join("conduit.db-wal");
    let left = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(left, 0, "the WAL must be folded into the database at close, found {} bytes in it", left);
    // A copy of the one file is the whole database (what `cp conduit.db backup.db` relies on).
    let copy = dir.path().join("copy.db");
    std::fs::copy(dir.path().join("conduit.db"), &copy).unwrap();
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", copy.display()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut conn).await.unwrap();
    assert_eq!(users, 1);
    conn.close().await.unwrap();
}
