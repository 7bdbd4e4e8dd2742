//! What migrating does beyond the schema: see `conduit_store::suite`.

use std::str::FromStr;

use conduit_store_sqlite::SqliteStore;
use sqlx::ConnectOptions;

#[tokio::test]
async fn bodies_without_html_get_it_when_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let execute = |sql: &'static str| {
        let url = url.clone();
        async move {
            let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().connect().await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    };
    let migrate = async { store.migrate().await.unwrap() };
    conduit_store::suite::bodies_without_html_get_it_when_migrating(&store, execute, migrate).await;
}
