//! Backup archives, which are SQLite databases with this crate's schema: a snapshot of a
//! running database taken online, one written row by row (from PostgreSQL), and the checks a
//! restore makes of one before it is trusted. What the archive file around the database holds
//! (manifest, checksum) is the server's `backup` folder's business; the SQL is here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use conduit_store::DbError;
use conduit_store::backup::{Batch, COUNTER_AUDIT, Cell, Disagreement, Kind, TABLES, Table, Transfer, send_in_batches};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::mpsc;

use crate::MIGRATOR;

/// The newest schema this build knows: the version of its last migration.
pub fn latest_schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Writes a consistent snapshot of the live database at `source` (a file another process may
/// be writing) to `into`, which must not exist. `VACUUM INTO` reads inside one transaction:
/// in WAL mode writers go on committing while it runs, and the copy holds none of them.
pub async fn snapshot(source: &Path, into: &Path) -> Result<(), DbError> {
    if !source.exists() {
        return Err(DbError::Other(format!("no SQLite database at {}", source.display())));
    }
    let options = SqliteConnectOptions::new()
        .filename(source)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .read_only(true);
    let pool = one_connection(options).await?;
    let text = into.to_str().ok_or_else(|| DbError::Other(format!("not a UTF-8 path: {}", into.display())))?;
    // Written at full speed, a gigabyte of copy sat in the page cache and went to disk at
    // once, and the server's own writes waited behind it: their p99 doubled during a backup of
    // a million articles, and did not move when the copy went to a tmpfs instead. Syncing
    // the copy as it grows keeps what waits for the disk small.
    let syncing = tokio::spawn(sync_while_growing(into.to_path_buf()));
    let done = sqlx::query("VACUUM INTO ?").bind(text).execute(&pool).await;
    syncing.abort();
    pool.close().await;
    done?;
    Ok(())
}

/// Every 100 ms, flushes `path`'s written pages to disk (until aborted).
async fn sync_while_growing(path: std::path::PathBuf) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let path = path.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::File::open(path).and_then(|f| f.sync_data())).await;
    }
}

async fn one_connection(options: SqliteConnectOptions) -> Result<SqlitePool, DbError> {
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await?)
}

/// An archive open for reading, checking, migrating or filling. One connection: it is a file
/// nobody else uses.
pub struct Archive {
    pool: SqlitePool,
}

impl Archive {
    /// Opens the archive database at `path` (a scratch copy: checks may migrate it).
    pub async fn open(path: &Path) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Delete)
            .foreign_keys(true);
        Ok(Self { pool: one_connection(options).await? })
    }

    /// Opens the database at `path` only to read it (whether a restore target is empty).
    pub async fn open_read_only(path: &Path) -> Result<Self, DbError> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(false).read_only(true);
        Ok(Self { pool: one_connection(options).await? })
    }

    /// A new archive at `path`, migrated, ready for [`Archive::write`]: its triggers are set
    /// aside (the rows arrive with their maintained counters, which triggers would count
    /// twice) and the counters the migrations start are cleared. Written without a journal
    /// and without syncs: until [`Archive::finish`] it is a scratch file, synced by the caller.
    pub async fn create(path: &Path) -> Result<(Self, SetAside), DbError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(false);
        let archive = Self { pool: one_connection(options).await? };
        MIGRATOR.run(&archive.pool).await.map_err(|e| DbError::Other(format!("cannot migrate the archive: {e}")))?;
        let triggers: Vec<(String, String)> =
            sqlx::query_as("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
                .fetch_all(&archive.pool)
                .await?;
        for (name, _) in &triggers {
            sqlx::query(&format!("DROP TRIGGER \"{name}\"")).execute(&archive.pool).await?;
        }
        sqlx::query("DELETE FROM counts").execute(&archive.pool).await?;
        sqlx::query("DELETE FROM favorite_counts").execute(&archive.pool).await?;
        let syncing = tokio::spawn(sync_while_growing(path.to_path_buf()));
        Ok((archive, SetAside { triggers: triggers.into_iter().map(|(_, sql)| sql).collect(), syncing }))
    }

    /// Adds a batch of rows (several statements of up to 100 rows each, in one transaction).
    pub async fn write(&self, batch: &Batch) -> Result<(), DbError> {
        let table = batch.table;
        let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        let mut tx = self.pool.begin().await?;
        for chunk in batch.rows.chunks(100) {
            // JSON goes in minified (`json(?)`), as SQLite's own triggers write it.
            let marks: Vec<&str> =
                table.columns.iter().map(|(_, kind)| if *kind == Kind::Json { "json(?)" } else { "?" }).collect();
            let one = format!("({})", marks.join(", "));
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                table.name,
                columns.join(", "),
                vec![one.as_str(); chunk.len()].join(", ")
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                for cell in row {
                    query = match cell {
                        Cell::Null => query.bind(None::<i64>),
                        Cell::Int(n) => query.bind(*n),
                        Cell::Text(text) => query.bind(text.as_str()),
                    };
                }
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Builds the search index from the articles written (its triggers were set aside with the
    /// rest, and a backup does not carry it), puts the triggers back and closes the archive.
    pub async fn finish(self, triggers: SetAside) -> Result<(), DbError> {
        sqlx::query("INSERT INTO article_search (article_search) VALUES ('rebuild')").execute(&self.pool).await?;
        for sql in &triggers.triggers {
            sqlx::query(sql).execute(&self.pool).await?;
        }
        drop(triggers);
        self.pool.close().await;
        Ok(())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }

    /// `PRAGMA integrity_check`: `Err` with SQLite's first complaints when the file is damaged.
    pub async fn integrity_check(&self) -> Result<(), DbError> {
        let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(5)").fetch_all(&self.pool).await?;
        if verdict != ["ok"] {
            return Err(DbError::Other(format!("the archive's database is damaged: {}", verdict.join("; "))));
        }
        Ok(())
    }

    /// The version of the last migration applied to it (0 when none).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success").fetch_one(&self.pool).await?;
        Ok(version.unwrap_or(0))
    }

    /// Brings its schema up to this build's.
    pub async fn migrate(&self) -> Result<(), DbError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| DbError::Other(format!("cannot migrate the archive: {e}")))
    }

    /// Rows per table, every table of [`TABLES`]; a table the database lacks counts 0.
    pub async fn table_counts(&self) -> Result<BTreeMap<String, i64>, DbError> {
        let present: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&self.pool).await?;
        let mut counts = BTreeMap::new();
        for table in TABLES {
            let n = if present.iter().any(|t| t == table.name) {
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", table.name)).fetch_one(&self.pool).await?
            } else {
                0
            };
            counts.insert(table.name.to_owned(), n);
        }
        Ok(counts)
    }

    /// Gathers the planner's statistics and merges the search index (a restored database serves
    /// its first requests with them; `dialect::analyze`).
    pub async fn analyze(&self) -> Result<(), DbError> {
        crate::dialect::analyze(&self.pool).await
    }

    /// The maintained counters that disagree with counting ([`COUNTER_AUDIT`]).
    pub async fn audit(&self) -> Result<Vec<Disagreement>, DbError> {
        Ok(sqlx::query_as(COUNTER_AUDIT).fetch_all(&self.pool).await?)
    }

    /// A few users to look up in a restored database (the first and last three by id): id,
    /// email and password hash.
    pub async fn sample_users(&self) -> Result<Vec<(i64, String, String)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, email, password_hash FROM users
             WHERE id IN (SELECT id FROM users ORDER BY id LIMIT 3) OR id IN (SELECT id FROM users ORDER BY id DESC LIMIT 3)
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sends every row of every table, in [`TABLES`] order, in batches; stops early (and
    /// well) when the receiver is gone.
    pub async fn read(&self, out: &mpsc::Sender<Transfer>) -> Result<(), DbError> {
        for table in TABLES {
            let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
            let sql = format!("SELECT {} FROM {} ORDER BY {}", columns.join(", "), table.name, table.key);
            let rows = sqlx::query(&sql).fetch(&self.pool);
            if !send_in_batches(table, rows, cells, out).await? {
                return Ok(());
            }
        }
        let _ = out.send(Transfer::Done).await;
        Ok(())
    }
}

/// The triggers [`Archive::create`] set aside, as SQL to run again, and the task that syncs
/// the archive as it grows (see [`snapshot`]), stopped when it is finished or dropped.
pub struct SetAside {
    triggers: Vec<String>,
    syncing: tokio::task::JoinHandle<()>,
}

impl Drop for SetAside {
    fn drop(&mut self) {
        self.syncing.abort();
    }
}

/// One row in the archive's terms. The type checks are skipped: SQLite's declared types
/// (BOOLEAN, TEXT dates) are what the schema says, and the kind says how to read each.
fn cells(table: &Table, row: &SqliteRow) -> Result<Vec<Cell>, DbError> {
    let mut cells = Vec::with_capacity(table.columns.len());
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        let cell = match kind {
            Kind::Int | Kind::Bool => row.try_get_unchecked::<Option<i64>, _>(i)?.map_or(Cell::Null, Cell::Int),
            Kind::Text | Kind::Time | Kind::Json => {
                row.try_get_unchecked::<Option<String>, _>(i)?.map_or(Cell::Null, Cell::Text)
            }
        };
        cells.push(cell);
    }
    Ok(cells)
}
