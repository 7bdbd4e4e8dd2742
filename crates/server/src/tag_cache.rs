//! The rendered answer of `GET /api/tags`, kept for a moment: counting tags reads every row of
//! the tag index, and the answer changes only when an article is written.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// How long a rendered answer is served at most (writes made through other instances).
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// The last rendered `{"tags":[...]}` and when it was made.
#[derive(Default)]
pub struct TagsCache(RwLock<Option<(Instant, Bytes)>>);

impl TagsCache {
    pub fn fresh(&self) -> Option<Bytes> {
        let cached = self.0.read().unwrap_or_else(|p| p.into_inner());
        cached.as_ref().filter(|(at, _)| at.elapsed() < MAX_AGE).map(|(_, body)| body.clone())
    }

    /// Keeps `body`, read from the store starting at `started`: stamped with the start of the
    /// read, so a write that lands during it is not hidden for longer than [`MAX_AGE`].
    pub fn keep(&self, started: Instant, body: Bytes) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some((started, body));
    }

    /// Forgets the cached answer: call after any write that can change the tags.
    pub fn invalidate(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
