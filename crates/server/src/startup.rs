//! [`Application`]: the one way a server is built, by `conduit serve` and by every HTTP test
//! alike, so a test runs what production runs: the cached store, the mail sender, Redis or the
//! session sweeper, the rate limits and the metrics listener.
//!
//! Imports: anything below `cli`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use conduit_domain::token::TokenKeys;
use conduit_store::Store;
use tokio::net::TcpListener;

use crate::auth::sessions;
use crate::config::Config;
use crate::mail::sender::{self, Sender};
use crate::ops::clock::{Clock, SystemClock};
use crate::ops::in_use::{self, InUse, Use};
use crate::ops::{database, redis, serve};
use crate::routes::router;
use crate::state::AppState;

/// How often expired sessions are deleted when they live in the database.
const SESSION_SWEEP: Duration = Duration::from_secs(60);

/// A server, built and listening, not yet serving.
pub struct Application {
    config: Config,
    listener: TcpListener,
    /// `/metrics` on its own listener, when `CONDUIT_METRICS_BIND` is set.
    metrics: Option<(TcpListener, Router)>,
    state: AppState,
    sender: Sender,
    /// The database is marked in use while this lives (a restore refuses it meanwhile).
    _in_use: InUse,
}

impl Application {
    /// Binds `config.bind` (port 0 picks a free one), opens and migrates the database, and
    /// starts what runs beside the requests (the mail sender, the session sweeper). Fails with
    /// one clear error on any mistake in `config` or any service it names that cannot be reached.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with the time of the rate limits and the re-authentication window
    /// given: a test moves a [`crate::ops::clock::ManualClock`] instead of waiting.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Application> {
        // The secret is settled before touching the database, so a missing one fails fast.
        let secret = database::jwt_secret(&config)?;
        let listener =
            TcpListener::bind(config.bind).await.with_context(|| format!("cannot listen on {}", config.bind))?;
        let in_use = in_use::claim(&config.database_url, Use::Serve).await?;
        let store = database::open(&config, database::Caching::On).await?;
        warn_of_missing_statistics(store.as_ref()).await;
        let redis = match &config.redis_url {
            Some(url) => Some(redis::connect(url).await?),
            None => {
                // Sessions live in the database: sweep the expired ones.
                sessions::sweep_expired(store.clone(), SESSION_SWEEP);
                None
            }
        };
        crate::ops::search_index::keep_merged(store.clone());
        crate::ops::search_index::fill_title_keys(store.clone());
        let links = config.mail.links_base(listener.local_addr()?);
        let tokens = TokenKeys::new(&secret, config.token_ttl);
        let redis_url = config.redis_url.as_deref();
        let keep_days = config.accounts.notifications_keep_days;
        let keep_alive = config.accounts.notifications_keep_alive;
        let notifier =
            crate::notify::start(store.clone(), redis.as_ref().zip(redis_url), keep_days, keep_alive).await?;
        let state = AppState::new(&config, store.clone(), tokens, links, redis, clock, notifier);
        // Kept running for the life of the runtime, like the sender's loop.
        let _schedule = crate::backup::schedule::start(state.backup_runner.clone());
        let sender = sender::start(store, state.mail.clone(), state.metrics.clone())?;
        let metrics = match config.metrics_bind {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot listen on {address} (CONDUIT_METRICS_BIND)"))?;
                Some((listener, router::metrics_app(state.clone())))
            }
            None => None,
        };
        Ok(Application { config, listener, metrics, state, sender, _in_use: in_use })
    }

    /// Where the API listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The store the server uses (cached, as served).
    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// The state handlers see, for tests that check what a request left behind.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT or SIGTERM: `conduit serve`.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        self.run_until(serve::shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests (up to the shutdown
    /// grace), sends the mail they queued, and closes the database.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { config, listener, metrics, state, sender, _in_use: in_use } = self;
        if let Some((listener, _)) = &metrics {
            tracing::info!(address = %format!("http://{}/metrics", listener.local_addr()?), "metrics are served separately");
        }
        tracing::info!(
            address = %format!("http://{}", listener.local_addr()?),
            backend = state.store.backend(),
            database = %database::redact(&config.database_url),
            "conduit is listening"
        );
        let store = state.store.clone();
        let app = router::app(state.clone(), crate::console::router(&state));
        let cap = serve::ConnectionCap {
            per_address: crate::ops::per_address::PerAddress::new(config.http.max_connections_per_address),
            trusted_proxies: config.http.trusted_proxies.clone().into(),
        };
        // Open streams end first: they would otherwise hold the drain for the whole grace.
        let hub = state.notifier.hub.clone();
        let shutdown = async move {
            shutdown.await;
            hub.close();
        };
        let stopped = serve::serve_until(
            listener,
            app,
            metrics,
            config.header_read_timeout,
            cap,
            config.shutdown_grace,
            shutdown,
        )
        .await
        .context("server failed")?;
        match stopped {
            serve::Stopped::Drained => {
                // Mail queued by the last requests goes out before the store closes.
                if !sender.drain(config.mail.smtp_timeout * 2).await {
                    tracing::warn!("mail still sending at shutdown stays queued for the next start");
                }
                store.close().await;
                drop(in_use);
                tracing::info!("stopped cleanly");
                Ok(())
            }
            // Abandoned requests may still hold connections: exit without waiting for the pool.
            serve::Stopped::GraceExpired => {
                anyhow::bail!(
                    "shutdown grace period ({:?}) ran out with requests still in flight",
                    config.shutdown_grace
                )
            }
        }
    }
}

/// Warns when a large table has no planner statistics (data loaded in bulk without `conduit
/// seed` or an `ANALYZE`): the planner then guesses, and listings ran 30 times slower.
async fn warn_of_missing_statistics(store: &dyn conduit_store::Store) {
    match store.unanalyzed_tables().await {
        Ok(tables) if !tables.is_empty() => tracing::warn!(
            ?tables,
            "these tables hold over {} rows and have no planner statistics, so queries on them may be \
             many times slower than they should: run `conduit analyze` once",
            conduit_store::UNANALYZED_ROWS
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "could not tell whether the tables have planner statistics"),
    }
}
