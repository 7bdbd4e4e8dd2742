//! What PostgreSQL says differently from SQLite: everything else is shared
//! (`crates/store/shared/`).

use conduit_domain::model::{ArticleId, UserId};
use conduit_domain::search::SearchQuery;
use conduit_store::DbError;
use sqlx::{Postgres, QueryBuilder};

/// Inserts an article's tags in their order. `WITH ORDINALITY` numbers an array's elements:
/// the tags and their order in one statement (SQLite has `json_each` instead).
pub async fn insert_tags(tx: &mut sqlx::PgConnection, id: ArticleId, tags: &[String]) -> Result<(), DbError> {
    let id = id.get();
    if tags.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "INSERT INTO article_tags (article_id, name, position)
         SELECT $1, t.name, t.position::int FROM unnest($2::text[]) WITH ORDINALITY AS t(name, position)",
        id,
        tags
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The active admins' names, locked for the transaction that may demote one: a concurrent
/// demotion of another admin waits here, then sees this one's outcome, so two admins demoting
/// each other cannot both succeed. (SQLite has one writer and no row locks.)
pub async fn lock_active_admins(tx: &mut sqlx::PgConnection) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!("SELECT username FROM users WHERE role = 'admin' AND active FOR UPDATE")
        .fetch_all(&mut *tx)
        .await?)
}

/// A user's ended sessions (`Some(None)`: none; `None`: no such user), locked for the
/// transaction that adds one, so two logouts at once cannot drop each other's entry.
pub async fn lock_ended_sessions(tx: &mut sqlx::PgConnection, id: UserId) -> Result<Option<Option<String>>, DbError> {
    let id = id.get();
    Ok(sqlx::query_scalar!("SELECT ended_sessions FROM users WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?)
}

/// A user's name and address lowered, in byte order: the expressions of the indexes
/// `users_username_lower` and `users_email_lower`, so a prefix is one range of them.
pub const LOWER_USERNAME: &str = r#"(lower(username) COLLATE "C")"#;
pub const LOWER_EMAIL: &str = r#"(lower(email) COLLATE "C")"#;

/// Before the store closes: nothing to do (SQLite folds its WAL into the database file here).
pub async fn before_close(_write: &sqlx::PgPool) {}

/// Where the transactions stand: `Oldest` the lowest id still running (every transaction
/// below it has ended), `Newest` an id above every transaction running now (a transaction id
/// taken for the purpose: a snapshot's xmax is only one past the newest *ended* one, and a
/// running transaction can be above it).
pub async fn transactions(pool: &sqlx::PgPool, bound: conduit_store::Bound) -> Result<Option<i64>, DbError> {
    let sql = match bound {
        conduit_store::Bound::Oldest => "SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)",
        conduit_store::Bound::Newest => "SELECT CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)",
    };
    let id: i64 = sqlx::query_scalar(sql).fetch_one(pool).await?;
    Ok(Some(id))
}

/// Claims due mail (see `outbox::claim`). `SKIP LOCKED` passes over messages another instance
/// is claiming at this moment, so each message goes to one sender and senders never wait on
/// each other; the lease then keeps it from the others until it is sent or fails.
pub async fn claim_mail(
    db: &sqlx::PgPool,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<conduit_store::QueuedMail>, DbError> {
    Ok(sqlx::query_as!(
        conduit_store::QueuedMail,
        r#"UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1
           WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1
                        ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
           RETURNING id AS "id!", kind, recipient AS "to", subject, body, attempts AS "attempts!: i64""#,
        now,
        lease_until,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// `ANALYZE`: PostgreSQL's planner statistics for every table of the database. (This project's
/// servers run with autovacuum off, and even with it on, a bulk load is queried before
/// autovacuum gets to it.)
pub async fn analyze(write: &sqlx::PgPool) -> Result<(), DbError> {
    sqlx::query("ANALYZE").execute(write).await?;
    Ok(())
}

/// The GIN index is one b-tree, kept by PostgreSQL: nothing to merge.
pub async fn search_segments(_read: &sqlx::PgPool) -> Result<Option<u64>, DbError> {
    Ok(None)
}

pub async fn merge_search_index(_write: &sqlx::PgPool, _start: bool) -> Result<(), DbError> {
    Ok(())
}

/// The growing tables with about `UNANALYZED_ROWS` rows or more and no planner statistics: a
/// table never analyzed (nor vacuumed) has `reltuples` -1, and its size stands in for its rows
/// (at least 100 bytes a row), read from the catalog at once whatever the table holds.
pub async fn unanalyzed_tables(read: &sqlx::PgPool) -> Result<Vec<String>, DbError> {
    let tables: Vec<String> = conduit_store::GROWING_TABLES.iter().map(|t| (*t).to_owned()).collect();
    Ok(sqlx::query_scalar!(
        r#"SELECT c.relname AS "relname!" FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
             AND c.relname = ANY($1) AND c.reltuples < 0 AND pg_relation_size(c.oid) >= CAST($2 AS BIGINT) * 100
           ORDER BY c.relname"#,
        &tables,
        conduit_store::UNANALYZED_ROWS
    )
    .fetch_all(read)
    .await?)
}

// --- search (the shared `search.rs` puts these pieces together) ---
//
// The index is the weighted `tsvector` column `articles.search` (title A, description B, body
// and tags C) with a GIN index. Every query is [`SearchQuery::websearch`] given to
// `websearch_to_tsquery`, which never fails on its input, rebuilt from the parsed words only.
//
// How the newest matches are found depends on how common the words are: for a rare word the GIN
// index gives all its articles and they are sorted; for a common one, walking the primary key
// backwards and checking each row finds enough within a few rows more than it needs. Only a
// plan made for the actual words can tell the two apart (from the column's statistics of its
// most common words), so the search runs with a custom plan (see [`run_search`]), unlike every
// other statement (`connect.rs`).

const WEBSEARCH: &str = "websearch_to_tsquery('english', ";

/// What a `hits` row holds, from an `articles a` row (the shared `search.rs` adds exact titles).
pub const SEARCH_HIT_COLUMNS: &str = "a.id, a.search";

/// The `hits` table: the ids and documents of the newest `scan` matches.
pub fn search_hits<'a>(sql: &mut QueryBuilder<'a, Postgres>, search: &SearchQuery, scan: i64) {
    sql.push("SELECT a.id, a.search FROM articles a WHERE a.search @@ ");
    push_query(sql, search);
    if search.checks_each_match() {
        // The walk down the primary key stops there (see conduit_store::SEARCH_WINDOW).
        sql.push(" AND a.id > (SELECT COALESCE(max(id), 0) FROM articles) - ");
        sql.push_bind(conduit_store::SEARCH_WINDOW);
    }
    sql.push(" ORDER BY a.id DESC LIMIT ");
    sql.push_bind(scan);
}

fn push_query<'a>(sql: &mut QueryBuilder<'a, Postgres>, search: &SearchQuery) {
    sql.push(WEBSEARCH);
    sql.push_bind(search.websearch());
    sql.push(")");
}

/// No tables: each candidate carries its document, and the tiers are read off it.
pub fn search_tier_tables<'a>(_sql: &mut QueryBuilder<'a, Postgres>, _search: &SearchQuery) {}

/// The candidate `c`'s score (see the shared `search.rs`): `ts_filter` keeps the title's (A) or
/// the description's (B) words of its document.
pub fn search_score<'a>(sql: &mut QueryBuilder<'a, Postgres>, search: &SearchQuery) {
    sql.push("(CASE WHEN ts_filter(c.search, '{a}') @@ ");
    push_query(sql, search);
    sql.push(" THEN 8 ELSE 0 END) + (CASE WHEN ts_filter(c.search, '{b}') @@ ");
    push_query(sql, search);
    sql.push(" THEN 4 ELSE 0 END)");
    if let Some(phrase) = search.phrase() {
        sql.push(" + (CASE WHEN c.search @@ ");
        push_query(sql, &phrase);
        sql.push(" THEN 2 ELSE 0 END)");
    }
}

/// Runs the search in its own transaction with a custom plan (see above).
pub async fn run_search(
    db: &sqlx::PgPool,
    mut sql: QueryBuilder<'_, Postgres>,
) -> Result<Vec<conduit_store::rows::SearchedRow>, DbError> {
    let mut tx = db.begin().await?;
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(&mut *tx).await?;
    let rows = sql.build_query_as().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}
