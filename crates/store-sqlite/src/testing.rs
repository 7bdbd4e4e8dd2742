//! Fresh databases for tests: each call gives a new, migrated database in its own temporary
//! directory, deleted when the returned guard drops.

use conduit_store::Cached;

use crate::SqliteStore;

/// A store on a fresh database, as served: cached, so every test also checks the cache's
/// invalidation.
pub async fn fresh_store() -> (Cached<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    let store = SqliteStore::connect(&url).await.expect("open test database");
    store.migrate().await.expect("migrate test database");
    let watch = store.commit_watch().expect("a database file");
    (Cached::start(store, watch, std::time::Duration::ZERO).await, dir)
}

/// Turns FTS5's own merging of the search index off in the database `conduit.db` in `dir` (a
/// [`fresh_store`]'s): each commit then leaves a segment of its own, as a big index's commits
/// do, where a test's few small ones would be merged at once.
pub async fn stop_search_automerge(dir: &std::path::Path) {
    use sqlx::{ConnectOptions, Connection};
    let url = format!("sqlite://{}", dir.join("conduit.db").display());
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().expect("a database URL");
    let mut db = options.connect().await.expect("open test database");
    sqlx::query("INSERT INTO article_search(article_search, rank) VALUES('automerge', 0)")
        .execute(&mut db)
        .await
        .expect("turn automerge off");
    db.close().await.expect("close");
}
