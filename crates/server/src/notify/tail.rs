//! Reads every new notification in id order and hands it to the [`Hub`]: one query for all of
//! an instance's streams, run when woken (a write on this instance, a word from another one
//! through Redis) and every [`Tail::poll`] besides.
//!
//! Streams must see ids in order with none skipped, or a client resuming from its last id
//! would miss one. PostgreSQL gives out ids before commit, so a later id can be committed
//! while an earlier one is not yet: the tail then stops at the gap and looks again every
//! [`GAP_RECHECK`] until the earlier id appears, or until [`GAP_GRACE`] passed. Then it is
//! taken for a rolled-back write and passed over (should it commit after all, it is in the
//! inbox but no stream's). SQLite gives out ids in commit order: no gap waits there but those
//! left by rows deleted before the tail read them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conduit_store::Store;
use conduit_store::notifications::Kind;
use tokio::sync::Notify;

use super::hub::{Event, Hub};
use super::view;

/// How long a gap in the ids is waited for before it is taken for a write that rolled back.
pub const GAP_GRACE: Duration = Duration::from_secs(2);
/// How often a gap is looked at again.
const GAP_RECHECK: Duration = Duration::from_millis(10);
/// Rows read at once.
const BATCH: i64 = 500;

/// The tail's settings and wake-ups.
pub struct Tail {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    /// Notified on every write here that may notify, and on every word from another instance.
    pub wake: Arc<Notify>,
    /// Whether other instances' writes are heard of (Redis is connected): then the tail looks
    /// by itself only every `poll_heard`, else every `poll`.
    pub heard: Arc<AtomicBool>,
    pub poll: Duration,
    pub poll_heard: Duration,
}

impl Tail {
    /// Runs until the hub closes.
    pub async fn run(self) {
        let mut closing = self.hub.closing();
        let mut gap: Option<(i64, Instant)> = None;
        loop {
            let wait = if gap.is_some() {
                GAP_RECHECK
            } else if self.heard.load(Ordering::Acquire) {
                self.poll_heard
            } else {
                self.poll
            };
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = closing.changed() => return,
            }
            loop {
                match self.read_once(&mut gap).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read new notifications; trying again");
                        break;
                    }
                }
            }
        }
    }

    /// Reads and hands out one batch; true when a full batch was read (there may be more).
    async fn read_once(&self, gap: &mut Option<(i64, Instant)>) -> Result<bool, conduit_store::DbError> {
        let from = self.hub.delivered();
        let rows = self.store.notifications_after(from, BATCH).await?;
        let full = rows.len() as i64 == BATCH;
        let mut expected = from + 1;
        for (id, notification) in rows {
            if id != expected {
                let since = match *gap {
                    Some((at, since)) if at == expected => since,
                    _ => {
                        *gap = Some((expected, Instant::now()));
                        return Ok(false);
                    }
                };
                if since.elapsed() < GAP_GRACE {
                    return Ok(false);
                }
                tracing::warn!(from = expected, to = id - 1, "notification ids never committed; passed over");
            }
            *gap = None;
            let to = match &notification {
                // A new article goes to the author's followers; read only when streams are open.
                Some(n) if n.kind == Kind::Article && self.hub.open() > 0 => self.store.follower_ids(n.user).await?,
                Some(n) if n.kind != Kind::Article => vec![n.user],
                _ => Vec::new(),
            };
            // Written as JSON once, and only when someone here listens.
            let event = notification.filter(|_| self.hub.listens(&to)).map(|n| Event { id, json: view::json(n) });
            self.hub.deliver(id, &to, event);
            expected = id + 1;
        }
        Ok(full && gap.is_none())
    }
}
