//! What PostgreSQL says differently from SQLite: everything else is shared
//! (`crates/store/shared/`).

use conduit_domain::model::{ArticleId, UserId};
use conduit_store::DbError;

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

/// Before the store closes: nothing to do (SQLite folds its WAL into the database file here).
pub async fn before_close(_write: &sqlx::PgPool) {}

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
