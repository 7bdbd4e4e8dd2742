//! [`AppState`]: what every handler can reach.
//!
//! Imports: `config`, `ops`, `limits`, `mail`, `backup`, `feeds`, `notify`.

use std::sync::Arc;

use conduit_domain::token::TokenKeys;
use conduit_store::Store;

use crate::config::{AccountSettings, Config, HttpSettings, LimitSettings};
use crate::limits::RateLimiter;
use crate::limits::hash_queue::Passwords;
use crate::mail::compose::Composer;
use crate::ops::clock::Clock;
use crate::ops::metrics::Metrics;
use crate::ops::redis::Redis;

/// What every handler can reach, behind one reference count: axum clones the state for every
/// request, and one atomic increment is cheaper than one per part (`/health/live` at
/// `RUST_LOG=warn`: 28,215 instructions with a dozen parts cloned, 27,538 with one; BENCHMARKS.md).
/// Built once, by
/// `startup::Application::build`; its parts are [`Parts`], reached through it as fields.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub tokens: TokenKeys,
    /// Argon2 off the async threads, behind a bounded queue.
    pub passwords: Passwords,
    /// Exports streaming at once (see `routes::export`): each holds up to a few megabytes.
    pub exports: Arc<tokio::sync::Semaphore>,
    /// Searches running at once (see `limits::searches_at_once`).
    pub searches: Arc<tokio::sync::Semaphore>,
    pub metrics: Arc<Metrics>,
    /// The scheduled backups' last results, for `/health/ready`.
    pub backups: crate::backup::schedule::SharedStatus,
    /// Whether backups are scheduled (`CONDUIT_BACKUP_DIR`).
    pub backups_scheduled: bool,
    /// The schedule itself, when there is one: the console takes and verifies backups through it.
    pub backup_runner: Option<Arc<crate::backup::schedule::Scheduled>>,
    pub http: Arc<HttpSettings>,
    pub limits: Arc<LimitSettings>,
    pub accounts: Arc<AccountSettings>,
    /// Whether `/metrics` is on the main router (false when it has its own address).
    pub metrics_on_main: bool,
    /// Attempt counters for logins, registrations and mail (see `limits`).
    pub limiter: Arc<RateLimiter>,
    /// Shared state across instances, when `REDIS_URL` is set.
    pub redis: Option<Redis>,
    /// Composes mail and wakes the sender (see `mail::compose`).
    pub mail: Arc<Composer>,
    /// The time of the rate limits and the re-authentication window.
    pub clock: Arc<dyn Clock>,
    /// The public URL the site is reached at, no trailing slash: links in feeds (and mail).
    pub site: String,
    /// Feeds built, by the validator they were built for (see `feeds`).
    pub feeds: crate::feeds::Built,
    /// The notification streams open here, and the wake-ups after a write (see `notify`).
    pub notifier: Arc<crate::notify::Notifier>,
}

impl AppState {
    /// The state for `config`, with mail links based at `links`.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        tokens: TokenKeys,
        links: String,
        redis: Option<Redis>,
        clock: Arc<dyn Clock>,
        notifier: Arc<crate::notify::Notifier>,
    ) -> Self {
        let metrics = Arc::new(
            Metrics::default().with_notifications(notifier.hub.handed_on.clone(), notifier.hub.read_back.clone()),
        );
        let mail = Arc::new(Composer::new(config.mail.clone(), links.clone()));
        let backups = crate::backup::schedule::SharedStatus::default();
        let backup_runner = config.backup.backup_dir.is_some().then(|| {
            Arc::new(crate::backup::schedule::Scheduled {
                config: config.clone(),
                store: store.clone(),
                mail: mail.clone(),
                metrics: metrics.clone(),
                status: backups.clone(),
                running: tokio::sync::Mutex::new(()),
                verified: std::sync::Mutex::default(),
            })
        });
        Self(Arc::new(Parts {
            store,
            tokens,
            passwords: Passwords::new(config.limits.hash_queue(config.http.max_concurrency)),
            exports: Arc::new(tokio::sync::Semaphore::new(crate::limits::EXPORTS_AT_ONCE)),
            searches: Arc::new(tokio::sync::Semaphore::new(crate::limits::searches_at_once())),
            metrics,
            backups,
            backups_scheduled: config.backup.backup_dir.is_some(),
            backup_runner,
            http: Arc::new(config.http.clone()),
            limits: Arc::new(config.limits.clone()),
            accounts: Arc::new(config.accounts.clone()),
            metrics_on_main: config.metrics_bind.is_none(),
            limiter: Arc::new(RateLimiter::new(redis.clone(), clock.clone())),
            redis,
            site: links.clone(),
            mail,
            clock,
            feeds: crate::feeds::Built::default(),
            notifier,
        }))
    }
}
