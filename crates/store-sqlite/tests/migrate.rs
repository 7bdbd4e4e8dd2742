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

/// The moderation migration loosens `users.role`'s CHECK by editing the schema's text (see the
/// migration): the edited constraint still refuses what it should, and the log refuses every
/// change but an insert.
#[tokio::test]
async fn the_role_check_holds_and_the_moderation_log_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    SqliteStore::connect(&url).await.unwrap().migrate().await.unwrap();
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().connect().await.unwrap();
    let add = "INSERT INTO users (username, email, password_hash, role, created_at, updated_at)
               VALUES ($1, $1, 'h', $2, '2026-12-07T00:00:00Z', '2026-12-07T00:00:00Z')";
    sqlx::query(add).bind("mo").bind("moderator").execute(&mut conn).await.unwrap();
    let bogus = sqlx::query(add).bind("x").bind("overlord").execute(&mut conn).await.unwrap_err();
    assert!(bogus.to_string().contains("CHECK"), "{bogus}");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(integrity, "ok");
    sqlx::query(
        "INSERT INTO moderation_log (at, moderator_id, moderator, action, target_kind, target_id, target, reason)
         VALUES ('2026-12-07T00:00:00Z', 1, 'mo', 'hide', 'article', 1, 'a', 'spam')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for change in ["UPDATE moderation_log SET reason = 'nothing'", "DELETE FROM moderation_log"] {
        let refused = sqlx::query(change).execute(&mut conn).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{change}: {refused}");
    }
    // The later migrations loosened the action's and the target kind's CHECKs the same way:
    // an admin's operations go in, anything else is still refused.
    let log = "INSERT INTO moderation_log (at, moderator_id, moderator, action, target_kind, target_id, target, reason)
               VALUES ('2026-12-07T00:00:00Z', 1, 'mo', $1, $2, 0, 'x', 'r')";
    for (action, kind) in [("requeue", "mail"), ("download", "backup"), ("reactivate", "profile")] {
        sqlx::query(log).bind(action).bind(kind).execute(&mut conn).await.unwrap();
    }
    for (action, kind) in [("overthrow", "mail"), ("download", "database")] {
        let bogus = sqlx::query(log).bind(action).bind(kind).execute(&mut conn).await.unwrap_err();
        assert!(bogus.to_string().contains("CHECK"), "{action} {kind}: {bogus}");
    }
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(integrity, "ok");
}
