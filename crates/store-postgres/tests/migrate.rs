//! What migrating does beyond the schema: see `conduit_store::suite`.

use conduit_store_postgres::PgStore;
use conduit_store_postgres::testing::TestDatabase;
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn bodies_without_html_get_it_when_migrating() {
    let database = TestDatabase::create().await;
    let store = PgStore::connect(&database.url, Default::default()).await.unwrap();
    let execute = |sql: &'static str| {
        let url = database.url.clone();
        async move {
            sqlx::query(sql).execute(&mut PgConnection::connect(&url).await.unwrap()).await.unwrap();
        }
    };
    let migrate = async { store.migrate().await.unwrap() };
    conduit_store::suite::bodies_without_html_get_it_when_migrating(&store, execute, migrate).await;
}
