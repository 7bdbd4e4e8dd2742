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

/// The moderation log refuses every change but an insert.
#[tokio::test]
async fn the_moderation_log_is_append_only() {
    let database = TestDatabase::create().await;
    PgStore::connect(&database.url, Default::default()).await.unwrap().migrate().await.unwrap();
    let mut conn = PgConnection::connect(&database.url).await.unwrap();
    sqlx::query(
        "INSERT INTO moderation_log (at, moderator_id, moderator, action, target_kind, target_id, target, reason)
         VALUES (now(), 1, 'mo', 'hide', 'article', 1, 'a', 'spam')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for change in ["UPDATE moderation_log SET reason = 'nothing'", "DELETE FROM moderation_log"] {
        let refused = sqlx::query(change).execute(&mut conn).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{change}: {refused}");
    }
}
