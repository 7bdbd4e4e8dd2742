use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::{MIGRATOR, SqliteStore};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid SQLite URL '{url}': {source}")]
    Url { url: String, source: sqlx::Error },
    #[error("cannot open SQLite database '{url}': {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate SQLite database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot render the HTML of existing bodies in the SQLite database: {0}")]
    Render(conduit_store::DbError),
}

/// Pool sizes and waits. The default reader count is two per core: each SQLite connection
/// runs on its own thread, and more threads than that only add context switches.
#[derive(Debug, Clone, Copy)]
pub struct SqliteSettings {
    pub readers: u32,
    /// How long a query waits for a connection before the request gets a 503.
    pub acquire_timeout: Duration,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2) as u32;
        Self { readers, acquire_timeout: Duration::from_secs(5) }
    }
}

// Every pool here skips sqlx's ping before handing out a connection: a connection to a local
// file cannot be cut off behind our back, and on SQLite the ping is a round trip to the
// connection's worker thread, as dear as a small query.

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH` or
    /// `sqlite::memory:`) with default pools. Does not migrate: see [`SqliteStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, SqliteSettings::default()).await
    }

    /// [`SqliteStore::connect`] with chosen pool settings.
    pub async fn connect_with(url: &str, settings: SqliteSettings) -> Result<Self, ConnectError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| ConnectError::Url { url: url.into(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode loses no committed transaction when the process dies; only an
            // OS crash or power loss can drop the last few. That is the usual trade for speed.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Pages read through a memory map of the file rather than copied by a read() each
            // into a 2 MiB cache per connection: a search walks several megabytes of the index,
            // which that cache could not keep (a search of two common words at a million
            // articles: 11-13 ms, 4-6 ms mapped). The map is the OS's page cache, shared by
            // every connection; SQLite's largest (2 GiB, its compiled-in limit).
            .pragma("mmap_size", "2147418112");
        let open = |source| ConnectError::Open { url: url.into(), source };

        if url.contains(":memory:") || url.contains("mode=memory") {
            // Every connection to an in-memory database is its own database: use exactly one,
            // kept open forever.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(open)?;
            return Ok(Self { read: pool.clone(), write: pool, path: None });
        }

        let path = options.get_filename().to_path_buf();
        // The writer stays open for the store's life, so SQLite never removes and restarts the
        // WAL index that a `CommitWatch` reads.
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(open)?;
        let read = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(settings.readers)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.read_only(true))
            .await
            .map_err(open)?;
        Ok(Self { read, write, path: Some(path) })
    }

    /// Brings the schema up to date, then renders the bodies that older versions stored without
    /// HTML (once; see the shared `articles::complete_after_migrating`).
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        MIGRATOR.run(&self.write).await?;
        crate::articles::complete_after_migrating(&self.write).await.map_err(ConnectError::Render)
    }

    /// Both pools' figures, for metrics.
    pub fn pools(&self) -> Vec<conduit_store::PoolStats> {
        use conduit_store::PoolStats;
        vec![PoolStats::of("read", &self.read), PoolStats::of("write", &self.write)]
    }
}
