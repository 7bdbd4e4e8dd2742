//! Conduit's HTTP service: the RealWorld API over any [`conduit_store::Store`].
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a listener until a
//! shutdown signal. Tests use both directly, the binary goes through [`cli`].

pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod passwords;
pub mod ratelimit;
pub mod redis;
pub mod routes;
pub mod serve;
pub mod sessions;
pub mod state;
pub mod telemetry;

pub use error::ApiError;
pub use routes::{app, metrics_app};
pub use serve::serve;
pub use state::AppState;
