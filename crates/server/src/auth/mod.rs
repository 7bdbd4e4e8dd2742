//! Who is calling and what they may do: the extractors that find the caller from a token or the
//! session cookie ([`extract`]), checking a password at login ([`login`]), and browser sessions
//! ([`sessions`]). Tokens themselves are `conduit_domain::token`; the counters in front of
//! every password check are `limits`.
//!
//! Imports: `state` and what it holds (`limits`, `mail`, `ops`, `config`, `error`).

pub mod extract;
pub mod login;
pub mod sessions;
