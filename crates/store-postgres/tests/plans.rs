//! Conduit runs every statement with a generic plan (`connect.rs`), made once per connection
//! without the parameters' values. Such a plan is chosen from the tables' sizes, so one that is
//! right on a test database can be a whole-table scan at a million articles: the unfiltered
//! listing's once hash-joined every article to serve a page of 20 (770 ms). This test builds a
//! database of that size and checks that the generic plan of every statement the server runs
//! (the offline query data in `.sqlx/`) reads no large table whole.

use sqlx::{Connection, PgConnection};

use conduit_store_postgres::testing::TestDatabase;

/// The tables a listing may join, which a plan must never read whole.
const LARGE: &[&str] = &["articles", "article_tags", "favorites", "favorite_counts", "comments", "follows", "users"];

/// A database shaped like one of a million articles, made in seconds: rows straight from
/// `generate_series` with the triggers off (`session_replication_role`), so no count is right,
/// but the planner sees the sizes it would see (it reads a table's real size in pages, so the
/// rows must exist). Articles and users at full size, where the generic plan went wrong; the
/// others large enough to be read by index.
const SHAPE: &str = "
    SET session_replication_role = replica;
    INSERT INTO users (username, email, password_hash, created_at, updated_at)
        SELECT 'u' || g, 'u' || g || '@example.com', 'x', now(), now() FROM generate_series(1, 100000) g;
    INSERT INTO articles (slug, author_id, title, description, body, created_at, updated_at)
        SELECT 's' || g, 1 + g % 100000, 'Title ' || g, 'A description', 'A body, a body, a body', now(), now()
        FROM generate_series(1, 1000000) g;
    INSERT INTO article_tags (article_id, name, position) SELECT g, 'tag' || g % 50, 0 FROM generate_series(1, 50000) g;
    INSERT INTO favorites (user_id, article_id) SELECT 1 + g % 100000, g FROM generate_series(1, 50000) g;
    INSERT INTO favorite_counts (article_id, stripe, n) SELECT g, 0, 1 FROM generate_series(1, 50000) g;
    INSERT INTO comments (article_id, author_id, body, created_at, updated_at)
        SELECT g, 1 + g % 100000, 'A comment', now(), now() FROM generate_series(1, 50000) g;
    INSERT INTO follows (follower_id, followee_id) SELECT g, 1 + g % 99999 + 1 FROM generate_series(1, 50000) g
        WHERE g <> 1 + g % 99999 + 1;
    SET session_replication_role = DEFAULT;
    ANALYZE;";

fn statements() -> Vec<(String, usize)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".sqlx");
    let mut found: Vec<(String, usize)> = std::fs::read_dir(&dir)
        .expect("the offline query data")
        .map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let data: serde_json::Value = serde_json::from_str(&text).unwrap();
            let params = data["describe"]["parameters"]["Left"].as_array().map_or(0, Vec::len);
            (data["query"].as_str().unwrap().to_owned(), params)
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn no_statement_reads_a_large_table_whole() {
    let db = TestDatabase::create().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SHAPE).execute(&mut conn).await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut conn).await.unwrap();

    let mut whole = Vec::new();
    let all = statements();
    assert!(all.len() > 50, "found only {} statements in .sqlx", all.len());
    for (n, (sql, params)) in all.iter().enumerate() {
        sqlx::raw_sql(&format!("PREPARE q{n} AS {sql}")).execute(&mut conn).await.unwrap();
        let nulls = vec!["NULL"; *params].join(", ");
        let execute = if *params == 0 { format!("EXECUTE q{n}") } else { format!("EXECUTE q{n}({nulls})") };
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN (COSTS OFF) {execute}")).fetch_all(&mut conn).await.unwrap();
        for line in &plan {
            if let Some(table) = LARGE.iter().find(|t| {
                line.contains(&format!("Seq Scan on {t} ")) || line.trim_end().ends_with(&format!("Seq Scan on {t}"))
            }) {
                whole.push(format!(
                    "{table}: {}\n{}",
                    sql.split_whitespace().collect::<Vec<_>>().join(" "),
                    plan.join("\n")
                ));
            }
        }
    }
    assert!(whole.is_empty(), "generic plans that read a large table whole:\n\n{}", whole.join("\n\n"));
}
