//! The handlers, one file per resource, and [`router`]: the one table of every method and path.
//!
//! Imports: anything below (`http`, `auth`, `state`, `mail`, `limits`, `ops`, `config`,
//! `error`). A handler file never imports another handler file's handlers; what two of them
//! share (the user's JSON, the re-authentication check) lives in `users.rs` and flows one way:
//! `account` and `session` use `users`, never the reverse.

pub mod account;
pub mod admin;
pub mod articles;
pub mod comments;
pub mod export;
pub mod feeds;
pub mod health;
pub mod moderation;
pub mod notifications;
pub mod openapi;
pub mod profiles;
pub mod router;
pub mod session;
pub mod tags;
pub mod users;
