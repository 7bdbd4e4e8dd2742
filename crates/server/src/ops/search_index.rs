//! Keeps SQLite's search index in few pieces on a live site. FTS5 adds a small segment per
//! commit and merges them only a few at a time, and every search walks all of them at once: a
//! million articles' index merged into one segment went back to 20 within 3,000 published
//! articles, and searches of two common words and of an exact title with it to 0.68x and 0.55x
//! of their speed merged (BENCHMARKS.md, "Search"). So once an hour, when the index is in
//! [`MAX_SEGMENTS`] or more, it is merged into one, in steps of
//! `conduit_store::SEARCH_MERGE_PAGES` pages with a pause between them, so that writes go on
//! meanwhile. On PostgreSQL the task ends at once: its GIN index needs none of this.

use std::sync::Arc;
use std::time::Duration;

use conduit_store::{DbError, Store};

/// How often the index is looked at (the first time five minutes after start).
pub const EVERY: Duration = Duration::from_secs(3600);
/// Segments from which the index is merged.
pub const MAX_SEGMENTS: u64 = 8;
/// Between two merge steps: the writes waiting for the database go first.
const PAUSE: Duration = Duration::from_millis(50);
/// Merge steps at most in one go: 4 GiB of index (a million articles' is 265 MiB).
const MAX_STEPS: usize = 1_000;

/// Writes the title keys of articles from before they were kept (after an upgrade), beside
/// serving rather than before it: minutes at a million articles on PostgreSQL. Meanwhile an
/// exact title's lookup misses the articles not yet keyed; nothing else waits on it.
pub fn fill_title_keys(store: Arc<dyn Store>) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        match store.fill_missing_title_keys().await {
            Ok(0) => {}
            Ok(keyed) => tracing::info!(
                keyed,
                seconds = started.elapsed().as_secs_f64(),
                "wrote the title keys (exact-title search) of articles written before they were kept"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot write the title keys of older articles; trying at the next start")
            }
        }
    });
}

/// Starts the hourly look (see the module's doc).
pub fn keep_merged(store: Arc<dyn Store>) {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(300);
        loop {
            tokio::time::sleep(wait).await;
            wait = EVERY;
            let started = std::time::Instant::now();
            match merge_if_due(store.as_ref(), PAUSE).await {
                Ok(None) => return,
                Ok(Some(Merged { before, after, steps })) if steps > 0 => tracing::info!(
                    before,
                    after,
                    steps,
                    seconds = started.elapsed().as_secs_f64(),
                    "search index merged"
                ),
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, "cannot merge the search index; trying again in an hour"),
            }
        }
    });
}

/// What [`merge_if_due`] did: the index's segments before and after, in `steps` steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    pub before: u64,
    pub after: u64,
    pub steps: usize,
}

/// Merges the index into one segment when it is in [`MAX_SEGMENTS`] or more; `None` where the
/// backend's index needs no upkeep. A write between two steps adds a segment, so the merge
/// stops at two segments or fewer (or after [`MAX_STEPS`]).
pub async fn merge_if_due(store: &dyn Store, pause: Duration) -> Result<Option<Merged>, DbError> {
    let Some(before) = store.search_segments().await? else {
        return Ok(None);
    };
    if before < MAX_SEGMENTS {
        return Ok(Some(Merged { before, after: before, steps: 0 }));
    }
    store.merge_search_index(true).await?;
    let mut steps = 1;
    let mut after = store.search_segments().await?.unwrap_or(0);
    while after > 2 && steps < MAX_STEPS {
        tokio::time::sleep(pause).await;
        store.merge_search_index(false).await?;
        steps += 1;
        after = store.search_segments().await?.unwrap_or(0);
    }
    Ok(Some(Merged { before, after, steps }))
}
