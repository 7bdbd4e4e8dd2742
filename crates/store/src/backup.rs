//! What a backup holds, table by table, in one shape for both backends.
//!
//! A backup archive is a SQLite database with Conduit's SQLite schema (see the server's
//! `backup` folder for the file around it). A SQLite deployment's archive is a snapshot of its
//! file (`VACUUM INTO`); a PostgreSQL deployment's is written row by row from one snapshot
//! (`REPEATABLE READ`), and restoring into PostgreSQL reads rows back the same way. The rows
//! cross between the two in the archive's terms: whole numbers, text and NULL, with booleans
//! as 0 and 1, instants as SQLite keeps them (RFC 3339 text) and JSON as text.
//!
//! [`TABLES`] names every table and column a backup carries. `tests/schema.rs` in each backend
//! fails when a migration adds a table or column it does not name, so a backup can never drop
//! one silently.

/// How a column's values are kept in each backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    /// PostgreSQL `boolean`; SQLite 0 or 1.
    Bool,
    /// PostgreSQL `timestamptz`; SQLite RFC 3339 text (as sqlx writes a `DateTime<Utc>`).
    Time,
    /// PostgreSQL `jsonb`; SQLite text.
    Json,
}

/// One table of a backup, in the order they load (a table after those it references).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    /// The columns that order its rows (its primary key).
    pub key: &'static str,
    /// A maintained counter table: PostgreSQL spreads each counter over stripes (rows) to
    /// spare hot rows; a backup keeps each as one row (stripe 0), its sum.
    pub striped: bool,
}

use Kind::{Bool, Int, Json, Text, Time};

pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("email", Text),
            ("password_hash", Text),
            ("bio", Text),
            ("image", Text),
            ("created_at", Time),
            ("updated_at", Time),
            ("role", Text),
            ("active", Bool),
            ("grace_token_id", Text),
            ("token_version", Int),
            ("ended_sessions", Text),
            ("email_verified", Bool),
            ("suspended_until", Int),
            ("suspension_reason", Text),
            ("blocking", Int),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "articles",
        columns: &[
            ("id", Int),
            ("slug", Text),
            ("author_id", Int),
            ("title", Text),
            ("description", Text),
            ("body", Text),
            ("created_at", Time),
            ("updated_at", Time),
            ("tag_list", Json),
            ("body_html", Text),
            ("title_key", Text),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "article_tags",
        columns: &[("article_id", Int), ("name", Text), ("position", Int)],
        key: "article_id, name",
        striped: false,
    },
    Table {
        name: "comments",
        columns: &[
            ("id", Int),
            ("article_id", Int),
            ("author_id", Int),
            ("body", Text),
            ("created_at", Time),
            ("updated_at", Time),
            ("body_html", Text),
            ("hidden", Bool),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "blocks",
        columns: &[("blocker_id", Int), ("blocked_id", Int), ("created_at", Time)],
        key: "blocker_id, blocked_id",
        striped: false,
    },
    Table {
        name: "hidden_articles",
        columns: &[("article_id", Int), ("hidden_at", Time)],
        key: "article_id",
        striped: false,
    },
    Table {
        name: "reports",
        columns: &[
            ("id", Int),
            ("reporter_id", Int),
            ("target_kind", Text),
            ("target_id", Int),
            ("reason", Text),
            ("details", Text),
            ("created_at", Time),
            ("state", Text),
            ("resolved_at", Time),
            ("log_id", Int),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "report_targets",
        columns: &[("target_kind", Text), ("target_id", Int), ("open_reports", Int), ("first_open_id", Int)],
        key: "target_kind, target_id",
        striped: false,
    },
    Table {
        name: "moderation_log",
        columns: &[
            ("id", Int),
            ("at", Time),
            ("moderator_id", Int),
            ("moderator", Text),
            ("action", Text),
            ("target_kind", Text),
            ("target_id", Int),
            ("target", Text),
            ("target_user", Text),
            ("reason", Text),
            ("until_at", Int),
            ("report_id", Int),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "notifications",
        columns: &[
            ("id", Int),
            ("user_id", Int),
            ("kind", Text),
            ("actor_id", Int),
            ("article_id", Int),
            ("comment_id", Int),
            ("others", Int),
            ("action", Text),
            ("detail", Text),
            ("created_at", Time),
            ("read_at", Time),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "favorites",
        columns: &[("user_id", Int), ("article_id", Int)],
        key: "user_id, article_id",
        striped: false,
    },
    Table {
        name: "follows",
        columns: &[("follower_id", Int), ("followee_id", Int)],
        key: "follower_id, followee_id",
        striped: false,
    },
    Table {
        name: "account_tokens",
        columns: &[
            ("selector", Text),
            ("verifier_hash", Text),
            ("user_id", Int),
            ("purpose", Text),
            ("email", Text),
            ("expires_at", Int),
            ("proven", Bool),
            ("issued_at", Int),
        ],
        key: "selector",
        striped: false,
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("recipient", Text),
            ("subject", Text),
            ("body", Text),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("last_error", Text),
            ("created_at", Int),
            ("sent_at", Int),
        ],
        key: "id",
        striped: false,
    },
    Table {
        name: "sessions",
        columns: &[("id", Text), ("data", Text), ("expires_at", Int)],
        key: "id",
        striped: false,
    },
    Table {
        name: "backup_slots",
        columns: &[("slot", Int), ("taken_by", Text), ("claimed_at", Int)],
        key: "slot",
        striped: false,
    },
    Table {
        name: "counts",
        columns: &[("kind", Text), ("key", Text), ("stripe", Int), ("n", Int)],
        key: "kind, key",
        striped: true,
    },
    Table {
        name: "favorite_counts",
        columns: &[("article_id", Int), ("stripe", Int), ("n", Int)],
        key: "article_id",
        striped: true,
    },
];

/// The tables with an identity (`id`) whose next value must follow the loaded rows.
pub const IDENTITY_TABLES: [&str; 7] =
    ["users", "articles", "comments", "outbox", "reports", "moderation_log", "notifications"];

/// One value in the archive's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// Rows of one table on their way between a backend and an archive.
#[derive(Debug)]
pub struct Batch {
    pub table: &'static Table,
    pub rows: Vec<Vec<Cell>>,
}

/// What a reader sends a writer: batches of rows, then `Done` once every table was read. A
/// writer that sees the channel close without `Done` keeps nothing (the reader failed).
#[derive(Debug)]
pub enum Transfer {
    Rows(Batch),
    Done,
}

/// Rows a batch carries at most (a batch of articles can be a few MB).
pub const BATCH_ROWS: usize = 500;

/// Sends `rows` of `table` to `out` in batches of [`BATCH_ROWS`]. `Ok(false)` when the
/// receiver is gone (it failed, and says why): the sender then stops, quietly.
pub async fn send_in_batches<R>(
    table: &'static Table,
    rows: impl futures::Stream<Item = Result<R, sqlx::Error>>,
    cells: impl Fn(&Table, &R) -> Result<Vec<Cell>, crate::DbError>,
    out: &tokio::sync::mpsc::Sender<Transfer>,
) -> Result<bool, crate::DbError> {
    use futures::TryStreamExt;
    let mut rows = std::pin::pin!(rows);
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    while let Some(row) = rows.try_next().await? {
        batch.push(cells(table, &row)?);
        if batch.len() == BATCH_ROWS
            && out.send(Transfer::Rows(Batch { table, rows: std::mem::take(&mut batch) })).await.is_err()
        {
            return Ok(false);
        }
    }
    Ok(batch.is_empty() || out.send(Transfer::Rows(Batch { table, rows: batch })).await.is_ok())
}

/// Every (table, column) [`TABLES`] names, by table name and then in column order: what each
/// backend's schema test compares its schema with.
pub fn named_columns() -> Vec<(String, String)> {
    let mut tables: Vec<&Table> = TABLES.iter().collect();
    tables.sort_by_key(|t| t.name);
    tables.iter().flat_map(|t| t.columns.iter().map(|(column, _)| (t.name.to_owned(), (*column).to_owned()))).collect()
}

/// The maintained counters that disagree with counting the rows they count, at most ten:
/// (kind, key, counted, kept). The same statement runs on both backends (`active` is a
/// boolean in one and 0/1 in the other; both read it as a condition). The two sides meet in
/// one GROUP BY, a sort: as a FULL OUTER JOIN of the two CTEs, SQLite compared every counter
/// with every other (a million articles: over 13 minutes, unfinished).
pub const COUNTER_AUDIT: &str = "
WITH counted (kind, key, n) AS (
    SELECT 'articles', '', COUNT(*) FROM articles WHERE id NOT IN (SELECT article_id FROM hidden_articles)
    UNION ALL SELECT 'author', CAST(author_id AS TEXT), COUNT(*) FROM articles
        WHERE id NOT IN (SELECT article_id FROM hidden_articles) GROUP BY author_id
    UNION ALL SELECT 'tag', name, COUNT(*) FROM article_tags
        WHERE article_id NOT IN (SELECT article_id FROM hidden_articles) GROUP BY name
    UNION ALL SELECT 'favorited_by', CAST(user_id AS TEXT), COUNT(*) FROM favorites
        WHERE article_id NOT IN (SELECT article_id FROM hidden_articles) GROUP BY user_id
    UNION ALL SELECT 'users', '', COUNT(*) FROM users
    UNION ALL SELECT 'users_active', '', COUNT(*) FROM users WHERE active
    UNION ALL SELECT 'favorites', CAST(article_id AS TEXT), COUNT(*) FROM favorites GROUP BY article_id
), kept (kind, key, n) AS (
    SELECT kind, key, SUM(n) FROM counts
    WHERE kind IN ('articles', 'author', 'tag', 'favorited_by', 'users', 'users_active') GROUP BY kind, key
    UNION ALL SELECT 'favorites', CAST(article_id AS TEXT), SUM(n) FROM favorite_counts GROUP BY article_id
)
SELECT kind, key, CAST(SUM(counted) AS BIGINT), CAST(SUM(kept) AS BIGINT) FROM (
    SELECT kind, key, n AS counted, 0 AS kept FROM counted
    UNION ALL SELECT kind, key, 0, n FROM kept
) both_sides
GROUP BY kind, key
HAVING SUM(counted) <> SUM(kept)
LIMIT 10";

/// A counter that disagrees with counting: (kind, key, counted, kept).
pub type Disagreement = (String, String, i64, i64);
