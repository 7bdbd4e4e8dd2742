//! The server's tests over real HTTP, in one test binary (one link of the server, not one per
//! file): each module is one concern, against a real `conduit` (in process, or as a child
//! process in `cli`, `connections`, `crash`, `notifications`, `postgres_restart`, `scaleout` and `telemetry`) on
//! a fresh database of either backend. `common` has the helpers.

#[macro_use]
mod common;

mod accounts;
mod api;
mod attacks;
mod authorization;
mod backup;
mod bounded;
mod cli;
mod connections;
mod crash;
mod hostile;
mod mail;
mod moderation;
mod notifications;
mod openapi;
mod operations;
mod postgres_restart;
mod ratelimit;
mod scaleout;
mod search;
mod sessions;
mod takeover;
mod telemetry;
