//! Mail: [`compose`] writes the messages and the single-use tokens they carry (a handler hands
//! them to the store with the change that causes them, so they are queued in its transaction);
//! [`sender`] is the background task that delivers the outbox.
//!
//! Imports: `config`, `ops` (metrics).

pub mod compose;
pub mod sender;
