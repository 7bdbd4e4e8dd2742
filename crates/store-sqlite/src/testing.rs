//! Fresh databases for tests: each call gives a new, migrated database in its own temporary
//! directory, deleted when the returned guard drops.

use crate::SqliteStore;

pub async fn fresh_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create temporary directory");
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    let store = SqliteStore::connect(&url).await.expect("open test database");
    store.migrate().await.expect("migrate test database");
    (store, dir)
}
