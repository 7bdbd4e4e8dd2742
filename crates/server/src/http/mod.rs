//! HTTP plumbing around the handlers: the edge every request passes first ([`edge`]: request
//! ids, shedding, timeouts, the access line, and the layers for CORS, gzip, sessions and body
//! size), the extractors that turn bodies and queries into typed values with the API's errors
//! ([`extract`]), and the client's address behind trusted proxies ([`client_addr`]).
//!
//! Imports: `auth`, `state` and below.

pub mod client_addr;
pub mod edge;
pub mod extract;
