use std::sync::Arc;

use conduit_domain::token::TokenKeys;
use conduit_store::Store;

use crate::config::{HttpSettings, MailSettings};
use crate::mail::Letters;
use crate::metrics::Metrics;
use crate::passwords::Passwords;
use crate::ratelimit::RateLimiter;
use crate::redis::Redis;

/// What every handler can reach. Cloned per request, so everything in it is cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: TokenKeys,
    pub passwords: Passwords,
    pub metrics: Arc<Metrics>,
    pub http: Arc<HttpSettings>,
    /// Whether `/metrics` is on the main router (false when it has its own address).
    pub metrics_on_main: bool,
    /// Attempt counters for logins and registration (see `ratelimit.rs`).
    pub limiter: Arc<RateLimiter>,
    /// Shared state across instances, when `REDIS_URL` is set.
    pub redis: Option<Redis>,
    /// Mail settings, tokens and messages (see `mail.rs`).
    pub letters: Arc<Letters>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, tokens: TokenKeys) -> Self {
        Self {
            store,
            tokens,
            passwords: Passwords::default(),
            metrics: Arc::new(Metrics::default()),
            http: Arc::new(HttpSettings::default()),
            metrics_on_main: true,
            limiter: Arc::new(RateLimiter::new(None)),
            redis: None,
            letters: Arc::new(Letters::new(MailSettings::default(), "http://localhost:3000".into())),
        }
    }

    /// Mail settings, with `links` the base of the links in mails.
    pub fn with_mail(mut self, settings: MailSettings, links: String) -> Self {
        self.letters = Arc::new(Letters::new(settings, links));
        self
    }

    pub fn with_http(mut self, http: HttpSettings) -> Self {
        self.passwords = Passwords::new(http.hash_queue());
        self.http = Arc::new(http);
        self
    }

    /// Shares rate-limit counters (and, with sessions, session data) through Redis.
    pub fn with_redis(mut self, redis: Redis) -> Self {
        self.limiter = Arc::new(RateLimiter::new(Some(redis.clone())));
        self.redis = Some(redis);
        self
    }
}
