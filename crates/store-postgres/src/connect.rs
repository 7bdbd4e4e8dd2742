use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{MIGRATOR, PgStore};

/// How long a pooled connection may sit unused before it is pinged on its next use.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid PostgreSQL URL: {0}")]
    Url(sqlx::Error),
    #[error("cannot connect to PostgreSQL at {target}: {source}")]
    Connect { target: String, source: sqlx::Error },
    #[error("cannot migrate PostgreSQL database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot render the HTML of existing bodies in the PostgreSQL database: {0}")]
    Render(conduit_store::DbError),
}

/// Pool sizing. Requests wait at most `acquire_timeout` for a connection, then get a 503.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_connections: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

impl PgStore {
    /// Connects, failing within `acquire_timeout` when the server cannot be reached. Does not
    /// migrate: see [`PgStore::migrate`].
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, ConnectError> {
        let mut options = PgConnectOptions::from_str(url).map_err(ConnectError::Url)?;
        // Every statement is prepared once per connection and then run with a generic plan.
        // Left to choose, PostgreSQL planned the listings afresh on every call once the data
        // grew (a generic plan's cost assumes `LIMIT $1` keeps a tenth of the rows, so it
        // never looked as cheap as a custom one for 20): 0.3-0.4 ms of planning for 0.1-0.2 ms
        // of execution, per page. A generic plan must then be right at any size: the listings
        // bound their page by a constant for it (store `listings.rs`), and tests/plans.rs checks
        // every statement's at a million articles. An operator's own
        // `options=-c plan_cache_mode=...` in the URL wins.
        if !url.contains("plan_cache_mode") {
            options = options.options([("plan_cache_mode", "force_generic_plan")]);
        }
        // No JIT: a generic plan's cost is its estimate for the whole walk, not for the page it
        // stops at, so a statement that reads twenty rows (a reader-with-blocks listing, built at
        // run time) crossed `jit_above_cost` and was compiled on every call: 17 ms of JIT for
        // 1.7 ms of work (issue 26). Nothing Conduit runs reads enough rows to repay it.
        if !url.contains("jit") {
            options = options.options([("jit", "off")]);
        }
        // Name the server without the password for error messages.
        let target =
            format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or_default());
        // sqlx pings every connection before handing it out: a round trip to PostgreSQL on
        // every request. Only a connection that sat idle for a while can have died unseen (a
        // restart, a proxy's idle cut), so only those are pinged; a busy one that died fails
        // its query with a 503 and is dropped (tests/postgres_restart.rs covers both).
        let pool = PgPoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_WHEN_IDLE_FOR {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options.clone())
            .await
            .map_err(|source| ConnectError::Connect { target, source })?;
        Ok(Self { read: pool.clone(), write: pool, options })
    }

    /// Brings the schema up to date, then renders the bodies that older versions stored without
    /// HTML (once; see the shared `articles::complete_after_migrating`).
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        MIGRATOR.run(&self.write).await?;
        crate::articles::complete_after_migrating(&self.write).await.map_err(ConnectError::Render)
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.write
    }

    /// The pool's figures, for metrics.
    pub fn pools(&self) -> Vec<conduit_store::PoolStats> {
        vec![conduit_store::PoolStats::of("postgres", &self.write)]
    }
}
