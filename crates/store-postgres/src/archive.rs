//! Backups of a PostgreSQL deployment and restores into one: every table read from one
//! snapshot, rows loaded with `COPY` in one transaction, and the advisory locks that keep a
//! restore and `conduit serve` apart. (The archive is a SQLite database: see
//! `conduit_store::backup`.)

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use conduit_store::DbError;
use conduit_store::backup::{
    Batch, COUNTER_AUDIT, Cell, Disagreement, IDENTITY_TABLES, Kind, TABLES, Table, Transfer, send_in_batches,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tokio::sync::mpsc;

use crate::{MIGRATOR, PgStore};

/// The advisory lock every serving instance holds shared and a restore takes alone. Advisory
/// locks belong to one database, so this names "Conduit is using this database".
const IN_USE_LOCK: i64 = 0x0063_6f6e_6475_6974;

/// A held advisory lock: its own connection, kept open for as long as the lock is needed.
pub struct DatabaseLock(PgConnection);

impl DatabaseLock {
    /// Whether the lock's connection still answers (PostgreSQL drops the lock with it).
    pub async fn alive(&mut self) -> bool {
        sqlx::Connection::ping(&mut self.0).await.is_ok()
    }

    /// Unlocks and closes: when this returns, PostgreSQL has let go (a connection merely
    /// dropped releases its locks only once the server notices it closed).
    pub async fn release(mut self) {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut self.0).await;
        if let Err(e) = unlocked {
            tracing::warn!(error = %e, "the database's in-use lock goes with its connection");
        }
        let _ = sqlx::Connection::close(self.0).await;
    }
}

impl PgStore {
    /// The newest schema this build knows: the version of its last migration.
    pub fn latest_schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// The version of the last migration applied (0 on an empty database).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&self.read).await?;
        if !exists {
            return Ok(0);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.read).await?;
        Ok(version.unwrap_or(0))
    }

    /// Marks the database as served for as long as the lock lives: `None` while a restore
    /// holds it.
    pub async fn hold_serving(&self) -> Result<Option<DatabaseLock>, DbError> {
        let mut connection = self.write.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock_shared($1)")
            .bind(IN_USE_LOCK)
            .fetch_one(&mut connection)
            .await?;
        Ok(held.then_some(DatabaseLock(connection)))
    }

    /// Takes the database for a restore: `None` while any `conduit serve` uses it.
    pub async fn hold_for_restore(&self) -> Result<Option<DatabaseLock>, DbError> {
        let mut connection = self.write.acquire().await?.detach();
        let held: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(IN_USE_LOCK).fetch_one(&mut connection).await?;
        Ok(held.then_some(DatabaseLock(connection)))
    }

    /// Rows per table, every table of [`TABLES`]; a table not created yet counts 0.
    pub async fn table_counts(&self) -> Result<BTreeMap<String, i64>, DbError> {
        let mut counts = BTreeMap::new();
        for table in TABLES {
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table.name).fetch_one(&self.read).await?;
            let n = if !exists {
                0
            } else if table.striped {
                // A backup keeps one row per counter, whatever its stripes.
                let keys = group_columns(table).join(", ");
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM (SELECT DISTINCT {keys} FROM {}) t", table.name))
                    .fetch_one(&self.read)
                    .await?
            } else {
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.name)).fetch_one(&self.read).await?
            };
            counts.insert(table.name.to_owned(), n);
        }
        Ok(counts)
    }

    /// The maintained counters that disagree with counting.
    pub async fn audit(&self) -> Result<Vec<Disagreement>, DbError> {
        Ok(sqlx::query_as(COUNTER_AUDIT).fetch_all(&self.read).await?)
    }

    /// Sends every row of every table, in [`TABLES`] order and in batches, all read in one
    /// `REPEATABLE READ` transaction: one snapshot, taken without blocking any writer.
    pub async fn dump(&self, out: &mpsc::Sender<Transfer>) -> Result<(), DbError> {
        let mut tx = self.read.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        for table in TABLES {
            let sql = select(table);
            let rows = sqlx::query(&sql).fetch(&mut *tx);
            if !send_in_batches(table, rows, cells, out).await? {
                return Ok(());
            }
        }
        tx.commit().await?;
        let _ = out.send(Transfer::Done).await;
        Ok(())
    }

    /// Replaces every table's rows with the batches `input` brings, in one transaction: a
    /// restore killed halfway leaves the tables as they were. Triggers are off while loading
    /// (the rows carry their maintained counters), the identities continue after the loaded
    /// ids. The caller checks the database is empty first, unless told to replace it.
    pub async fn load(&self, mut input: mpsc::Receiver<Transfer>) -> Result<u64, DbError> {
        let mut tx = self.write.begin().await?;
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        sqlx::query(&format!("TRUNCATE {}", names.join(", "))).execute(&mut *tx).await?;
        for name in &names {
            sqlx::query(&format!("ALTER TABLE {name} DISABLE TRIGGER USER")).execute(&mut *tx).await?;
        }
        let mut loaded = 0;
        loop {
            match input.recv().await {
                Some(Transfer::Rows(batch)) => loaded += copy(&mut tx, &batch).await?,
                Some(Transfer::Done) => break,
                // The reader failed: the transaction rolls back as it drops.
                None => return Err(DbError::Other("the archive's rows stopped before their end".into())),
            }
        }
        for name in &names {
            sqlx::query(&format!("ALTER TABLE {name} ENABLE TRIGGER USER")).execute(&mut *tx).await?;
        }
        for name in IDENTITY_TABLES {
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {name}"
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(loaded)
    }
}

/// The columns a striped table's counter is named by (all but `stripe` and `n`).
fn group_columns(table: &Table) -> Vec<&'static str> {
    table.columns.iter().map(|(name, _)| *name).filter(|name| !matches!(*name, "stripe" | "n")).collect()
}

/// The statement reading `table` in the archive's terms.
fn select(table: &Table) -> String {
    let expressions: Vec<String> = table
        .columns
        .iter()
        .map(|(name, kind)| match (table.striped, *name, kind) {
            (true, "stripe", _) => "CAST(0 AS BIGINT)".to_owned(),
            (true, "n", _) => "CAST(SUM(n) AS BIGINT)".to_owned(),
            (_, name, Kind::Int) => format!("CAST(\"{name}\" AS BIGINT)"),
            (_, name, Kind::Bool) => format!("CAST(CAST(\"{name}\" AS INT) AS BIGINT)"),
            (_, name, Kind::Json) => format!("CAST(\"{name}\" AS TEXT)"),
            (_, name, Kind::Text | Kind::Time) => format!("\"{name}\""),
        })
        .collect();
    let group = if table.striped { format!(" GROUP BY {}", group_columns(table).join(", ")) } else { String::new() };
    format!("SELECT {} FROM {}{group} ORDER BY {}", expressions.join(", "), table.name, table.key)
}

fn cells(table: &Table, row: &PgRow) -> Result<Vec<Cell>, DbError> {
    let mut cells = Vec::with_capacity(table.columns.len());
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        let cell = match kind {
            Kind::Int | Kind::Bool => row.try_get::<Option<i64>, _>(i)?.map_or(Cell::Null, Cell::Int),
            Kind::Text | Kind::Json => row.try_get::<Option<String>, _>(i)?.map_or(Cell::Null, Cell::Text),
            // As sqlx writes a `DateTime<Utc>` into SQLite, so the archive reads like one
            // written there.
            Kind::Time => row
                .try_get::<Option<DateTime<Utc>>, _>(i)?
                .map_or(Cell::Null, |t| Cell::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))),
        };
        cells.push(cell);
    }
    Ok(cells)
}

/// Loads one batch with `COPY ... FROM STDIN` (text format). PostgreSQL reads each value
/// from its text: RFC 3339 instants, JSON, and 0 or 1 as a boolean.
async fn copy(connection: &mut PgConnection, batch: &Batch) -> Result<u64, DbError> {
    let table = batch.table;
    let columns: Vec<String> = table.columns.iter().map(|(name, _)| format!("\"{name}\"")).collect();
    let mut text = String::new();
    for row in &batch.rows {
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                text.push('\t');
            }
            match cell {
                Cell::Null => text.push_str("\\N"),
                Cell::Int(n) => text.push_str(&n.to_string()),
                Cell::Text(value) => escape_into(&mut text, value),
            }
        }
        text.push('\n');
    }
    let mut copy = connection.copy_in_raw(&format!("COPY {} ({}) FROM STDIN", table.name, columns.join(", "))).await?;
    copy.send(text.into_bytes()).await?;
    Ok(copy.finish().await?)
}

/// `value` as a field of COPY's text format.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}
