//! Conduit's HTTP service: the RealWorld API over any [`conduit_store::Store`].
//!
//! [`startup::Application`] builds the server (`conduit serve` and every HTTP test call it);
//! [`routes::router`] lists every route once, beside its handler; the binary goes through
//! [`cli`].
//!
//! The rooms, lowest first. A module imports only from rooms above it in this list, never from
//! one below, and no two files import each other (a test below holds every file to it):
//!
//! | room | what it owns |
//! |---|---|
//! | `config/` | every setting: declarations, layering, parsing, the groups (edge, limits, accounts, mail) |
//! | `error.rs` | [`ApiError`], the one error type, and its JSON shape |
//! | `ops/` | connections (database, Redis), serving until a signal, logs, traces, metrics |
//! | `limits/` | rate limits (logins, registrations, mail) and the password-hash queue |
//! | `mail/` | composing mail and its tokens; the sender that delivers the outbox |
//! | `backup/` | backups taken online, restores that check themselves, backups scheduled in `serve` |
//! | `feeds/` | RSS and Atom documents of articles, their validators, the built documents kept |
//! | `notify/` | notifications live: the streams open here, the tail feeding them, the words between instances |
//! | `state.rs` | [`AppState`], what every handler reaches |
//! | `auth/` | the caller: token and session extractors, the login check, browser sessions |
//! | `http/` | the edge around every request, body and query extractors, the client's address |
//! | `routes/` | the handlers, one file per resource; `router.rs`, the route table; the OpenAPI document |
//! | `console/` | the operator's console under `/admin`: server-rendered pages for admins and moderators |
//! | `startup.rs` | [`startup::Application`]: build, listen, serve, drain |
//! | `cli/` | the `conduit` command line and demo data |

pub mod config;
pub mod error;
pub mod ops;

pub mod limits;
pub mod mail;

pub mod backup;
pub mod feeds;
pub mod notify;

pub mod state;

pub mod auth;
pub mod http;
pub mod routes;

pub mod console;

pub mod cli;
pub mod startup;

pub use error::ApiError;
pub use state::AppState;

#[cfg(test)]
mod layering;
