//! What SQLite says differently from PostgreSQL: everything else is shared
//! (`crates/store/shared/`).

use conduit_domain::model::{ArticleId, UserId};
use conduit_domain::search::SearchQuery;
use conduit_store::DbError;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite};

/// Inserts an article's tags in their order. `json_each` yields each element of a JSON array
/// with its index: the tags and their order in one statement (PostgreSQL has arrays instead).
pub async fn insert_tags(tx: &mut sqlx::SqliteConnection, id: ArticleId, tags: &[String]) -> Result<(), DbError> {
    let id = id.get();
    if tags.is_empty() {
        return Ok(());
    }
    let tags = Json(tags);
    sqlx::query!(
        "INSERT INTO article_tags (article_id, name, position) SELECT $1, value, key FROM json_each($2)",
        id,
        tags
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The active admins' names, in the transaction that may demote one. SQLite has no row locks
/// and needs none: every write goes through the one writer connection, so this transaction's
/// check and change cannot interleave with another demotion.
pub async fn lock_active_admins(tx: &mut sqlx::SqliteConnection) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!("SELECT username FROM users WHERE role = 'admin' AND active").fetch_all(&mut *tx).await?)
}

/// A user's ended sessions (`Some(None)`: none; `None`: no such user), in the transaction that
/// adds one; unlocked for the reason given at [`lock_active_admins`].
pub async fn lock_ended_sessions(
    tx: &mut sqlx::SqliteConnection,
    id: UserId,
) -> Result<Option<Option<String>>, DbError> {
    let id = id.get();
    Ok(sqlx::query_scalar!("SELECT ended_sessions FROM users WHERE id = $1", id).fetch_optional(&mut *tx).await?)
}

/// A user's name and address lowered (text compares byte by byte): the expressions of the
/// indexes `users_username_lower` and `users_email_lower`, so a prefix is one range of them.
pub const LOWER_USERNAME: &str = "lower(username)";
pub const LOWER_EMAIL: &str = "lower(email)";

/// None: one writer at a time, so ids are committed in the order they are given out.
pub async fn transactions(_pool: &sqlx::SqlitePool, _bound: conduit_store::Bound) -> Result<Option<i64>, DbError> {
    Ok(None)
}

/// Before the store closes: folds the WAL into the database file and empties it, so the file
/// alone is the whole database (a copy of `conduit.db` after `conduit seed` lacked its whole
/// load). SQLite does this by itself only when the last connection to the file closes, which
/// a reader still closing on its own thread can keep from being the writer.
pub async fn before_close(write: &sqlx::SqlitePool) {
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(write).await {
        tracing::warn!(error = %e, "could not fold the WAL into the database file at close");
    }
}

/// Claims due mail (see `outbox::claim`). One statement on the one writer connection: no other
/// sender can claim the same message in between, so SQLite needs no row locks here.
pub async fn claim_mail(
    write: &sqlx::SqlitePool,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<conduit_store::QueuedMail>, DbError> {
    Ok(sqlx::query_as!(
        conduit_store::QueuedMail,
        r#"UPDATE outbox SET next_attempt_at = $2, attempts = attempts + 1
           WHERE id IN (SELECT id FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1
                        ORDER BY next_attempt_at LIMIT $3)
           RETURNING id AS "id!", kind, recipient AS "to", subject, body, attempts AS "attempts!: i64""#,
        now,
        lease_until,
        limit
    )
    .fetch_all(write)
    .await?)
}

/// After a bulk load (`conduit seed`, a restore, `conduit analyze`): the search index merged
/// into one segment, then `ANALYZE`, SQLite's planner statistics (`sqlite_stat1`) for every
/// table and index.
///
/// FTS5 keeps its index as segments, a new small one per committed write, merged a few at a
/// time; a search walks every segment at once, newest first. A seeded million had 19 of them,
/// and merging them into one ('optimize', 3.3 s there) made a search of its most common word
/// 1.3x as fast, two common words 1.5x, an exact title 1.9x (BENCHMARKS.md, "Search").
pub async fn analyze(write: &sqlx::SqlitePool) -> Result<(), DbError> {
    sqlx::query("INSERT INTO article_search(article_search) VALUES('optimize')").execute(write).await?;
    sqlx::query("ANALYZE").execute(write).await?;
    Ok(())
}

/// The FTS5 index's segments (one row per segment and level of its b-tree index: a few hundred
/// rows at a million articles).
pub async fn search_segments(read: &sqlx::SqlitePool) -> Result<Option<u64>, DbError> {
    let n: i64 = sqlx::query_scalar("SELECT count(DISTINCT segid) FROM article_search_idx").fetch_one(read).await?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

/// FTS5's 'merge' command: a negative page count starts merging every segment into one (an
/// 'optimize' done in steps, so writes go on between them), a positive one goes on with it.
pub async fn merge_search_index(write: &sqlx::SqlitePool, start: bool) -> Result<(), DbError> {
    let pages = if start { -conduit_store::SEARCH_MERGE_PAGES } else { conduit_store::SEARCH_MERGE_PAGES };
    sqlx::query("INSERT INTO article_search(article_search, rank) VALUES('merge', ?)")
        .bind(pages)
        .execute(write)
        .await?;
    Ok(())
}

/// The growing tables with at least `UNANALYZED_ROWS` rows and no row in `sqlite_stat1`. Rows
/// are counted only up to the threshold (`LIMIT`), so the check costs a few milliseconds
/// whatever the table holds.
pub async fn unanalyzed_tables(read: &sqlx::SqlitePool) -> Result<Vec<String>, DbError> {
    let analyzed: Vec<String> = match sqlx::query_scalar("SELECT DISTINCT tbl FROM sqlite_stat1").fetch_all(read).await
    {
        Ok(tables) => tables,
        // No ANALYZE ever ran: there is no sqlite_stat1 at all.
        Err(sqlx::Error::Database(e)) if e.message().contains("no such table") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut unanalyzed = Vec::new();
    for table in conduit_store::GROWING_TABLES {
        if analyzed.iter().any(|t| t == table) {
            continue;
        }
        // The table name is one of ours, not input.
        let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT {})", conduit_store::UNANALYZED_ROWS);
        let rows: i64 = sqlx::query_scalar(&sql).fetch_one(read).await?;
        if rows >= conduit_store::UNANALYZED_ROWS {
            unanalyzed.push(table.to_owned());
        }
    }
    Ok(unanalyzed)
}

// --- search (the shared `search.rs` puts these pieces together) ---
//
// The index is the FTS5 table `article_search`, whose rowid is the article's id. Its doclists
// are sorted by rowid, so `ORDER BY rowid DESC LIMIT n` walks them backwards and stops after
// n matches. Every query is [`SearchQuery::fts5`]: each word quoted, no operator of the user's.

/// What a `hits` row holds, from an `articles a` row (the shared `search.rs` adds exact titles).
pub const SEARCH_HIT_COLUMNS: &str = "a.id";

/// The `hits` table: the ids of the newest `scan` matches.
pub fn search_hits<'a>(sql: &mut QueryBuilder<'a, Sqlite>, search: &SearchQuery, scan: i64) {
    sql.push("SELECT rowid AS id FROM article_search WHERE article_search MATCH ");
    sql.push_bind(search.fts5());
    if search.checks_each_match() {
        // FTS5 stops its walk at a rowid bound (see conduit_store::SEARCH_WINDOW).
        sql.push(" AND rowid > (SELECT COALESCE(max(id), 0) FROM articles) - ");
        sql.push_bind(conduit_store::SEARCH_WINDOW);
    }
    sql.push(" ORDER BY rowid DESC LIMIT ");
    sql.push_bind(scan);
}

/// The tiers' tables: the candidates whose title, or description, match the whole query, and
/// those where its words stand as a phrase. Each walks the index from the oldest candidate on
/// only (FTS5 seeks to a rowid bound), so each costs about what `hits` did.
pub fn search_tier_tables<'a>(sql: &mut QueryBuilder<'a, Sqlite>, search: &SearchQuery) {
    let fts = search.fts5();
    let mut table = |name: &str, query: String| {
        sql.push(format!(
            ", {name} AS MATERIALIZED (SELECT rowid AS id FROM article_search WHERE article_search MATCH "
        ));
        sql.push_bind(query);
        sql.push(" AND rowid >= (SELECT min(id) FROM candidates))");
    };
    table("in_title", format!("title : ({fts})"));
    table("in_description", format!("description : ({fts})"));
    if let Some(phrase) = search.phrase() {
        table("as_phrase", phrase.fts5());
    }
}

/// The candidate `c`'s score (see the shared `search.rs`).
pub fn search_score<'a>(sql: &mut QueryBuilder<'a, Sqlite>, search: &SearchQuery) {
    sql.push(
        "(CASE WHEN c.id IN (SELECT id FROM in_title) THEN 8 ELSE 0 END) + (CASE WHEN c.id IN (SELECT id FROM in_description) THEN 4 ELSE 0 END)",
    );
    if search.phrase().is_some() {
        sql.push(" + (CASE WHEN c.id IN (SELECT id FROM as_phrase) THEN 2 ELSE 0 END)");
    }
}

pub async fn run_search(
    db: &sqlx::SqlitePool,
    mut sql: QueryBuilder<'_, Sqlite>,
) -> Result<Vec<conduit_store::rows::SearchedRow>, DbError> {
    Ok(sql.build_query_as().fetch_all(db).await?)
}
