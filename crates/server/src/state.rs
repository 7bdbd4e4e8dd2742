use std::sync::Arc;

use conduit_domain::token::TokenKeys;
use conduit_store::Store;

use crate::layers::HttpSettings;
use crate::metrics::Metrics;
use crate::passwords::Passwords;

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
        }
    }

    pub fn with_http(mut self, http: HttpSettings) -> Self {
        self.http = Arc::new(http);
        self
    }
}
