//! `schema.sql` (beside Cargo.toml) is the schema the migrations make: every table, index and
//! trigger as SQLite keeps it in `sqlite_master`. This fails when a migration changed the schema
//! and the file was not regenerated; `CONDUIT_BLESS_SCHEMA=1` rewrites the file.

use std::str::FromStr;

use conduit_store::schema_file::{Kind, SchemaObject, assert_schema_sql, render};
use conduit_store_sqlite::testing::fresh_store;
use sqlx::{ConnectOptions, Connection};

const HEADER: &str = "\
-- The schema of Conduit's SQLite database as the migrations (migrations/) leave it: each table
-- with its indexes and triggers, tables by name, each statement as SQLite keeps it.
-- For reading: the migrations are what runs. Generated; tests/schema.rs fails when it is stale.
-- Regenerate: CONDUIT_BLESS_SCHEMA=1 cargo test -p conduit-store-sqlite --test schema
";

#[tokio::test]
async fn schema_sql_is_the_schema_the_migrations_make() {
    let (_store, dir) = fresh_store().await;
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().connect().await.unwrap();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT type, name, tbl_name, sql FROM sqlite_master
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND tbl_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let objects = rows
        .into_iter()
        .map(|(kind, name, table, sql)| {
            let kind = match kind.as_str() {
                "table" => Kind::Table,
                "index" => Kind::Index,
                "trigger" => Kind::Trigger,
                "view" => Kind::View,
                other => panic!("schema.sql does not show {other}s yet ({name}): teach this test"),
            };
            SchemaObject { table: Some(table), kind, name, sql }
        })
        .collect();
    assert_schema_sql(env!("CARGO_MANIFEST_DIR"), env!("CARGO_PKG_NAME"), &render(HEADER, objects));
}

/// A backup carries every table and column (`conduit_store::backup::TABLES`): a migration that
/// adds one without naming it there fails here, rather than backups dropping it silently.
/// The search index (`article_search` and its shadow tables) is not carried: it is rebuilt from
/// the articles (`archive::Archive::finish`).
#[tokio::test]
async fn backups_name_every_table_and_column() {
    let (_store, dir) = fresh_store().await;
    let url = format!("sqlite://{}", dir.path().join("conduit.db").display());
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap().connect().await.unwrap();
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'
           AND m.name <> 'article_search' AND substr(m.name, 1, 15) <> 'article_search_'
         ORDER BY m.name, c.cid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(columns, conduit_store::backup::named_columns(), "the schema against backup::TABLES");
}
