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
