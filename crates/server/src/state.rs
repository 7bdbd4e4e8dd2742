use std::sync::Arc;

use conduit_domain::token::TokenKeys;
use conduit_store::Store;

use crate::passwords::Passwords;

/// What every handler can reach. Cloned per request, so everything in it is cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub tokens: TokenKeys,
    pub passwords: Passwords,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, tokens: TokenKeys) -> Self {
        Self {
            store,
            tokens,
            passwords: Passwords::default(),
        }
    }
}
