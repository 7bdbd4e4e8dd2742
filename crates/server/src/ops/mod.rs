//! Running the process: the database and Redis connections, serving connections until a
//! signal, logs (a writer thread of its own, each line tagged with its request), traces, and the
//! Prometheus metrics.
//!
//! Imports: `config` only. Everything above may use these.

pub mod clock;
pub mod database;
pub mod in_use;
pub mod log_writer;
pub mod metrics;
pub mod per_address;
pub mod redis;
pub mod request_context;
pub mod search_index;
pub mod serve;
pub mod telemetry;
