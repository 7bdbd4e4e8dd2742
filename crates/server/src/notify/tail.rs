//! Reads every new notification in id order and hands it to the [`Hub`]: one query for all of
//! an instance's streams, run when woken (a write on this instance, a word from another one
//! through Redis) and every [`Tail::poll`] besides.
//!
//! Streams must see ids in order with none skipped, or a client resuming from its last id
//! would miss one. PostgreSQL gives out ids before commit, so a later id can be committed
//! while an earlier one is not yet: the tail then stops at the gap and looks again every
//! [`GAP_RECHECK`]. A gap stays for good when its row was deleted before the tail read it (a
//! favorite regrouped, a block) or its write rolled back; the tail tells so from the
//! database's transactions ([`Store::transactions`]): once every transaction that was running
//! when the gap was seen has ended, the gap is passed over. Only a transaction held open for
//! over [`GAP_GRACE`] (a stalled connection) is not waited for longer: should its notification
//! commit after all, it is in the inbox but on no stream. SQLite commits ids in the order it
//! gives them out (one writer): there every gap is final at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conduit_store::notifications::Kind;
use conduit_store::{Bound, Store};
use tokio::sync::Notify;

use super::hub::{Event, Hub};
use super::sse;

/// The longest a gap in the ids is waited for.
pub const GAP_GRACE: Duration = Duration::from_secs(2);
/// How often a gap is looked at again.
const GAP_RECHECK: Duration = Duration::from_millis(10);
/// Rows read at once.
const BATCH: i64 = 500;
/// How long the tail waits after a wake-up before it reads (see `Tail::run`).
const COALESCE: Duration = Duration::from_millis(5);
/// How often the tail looks while no stream is open here.
const IDLE_POLL: Duration = Duration::from_secs(5);

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
        let mut gap: Option<Gap> = None;
        loop {
            let wait = if gap.is_some() {
                GAP_RECHECK
            } else if self.hub.open() == 0 {
                // Nobody to hand anything to: look now and then, so that the first stream to
                // open has little to catch up on (it wakes the tail when it does).
                IDLE_POLL
            } else if self.heard.load(Ordering::Acquire) {
                self.poll_heard
            } else {
                self.poll
            };
            tokio::select! {
                () = self.wake.notified() => {
                    if self.hub.open() == 0 && gap.is_none() {
                        continue;
                    }
                    // The writes of the next few milliseconds are read by the same query: under
                    // a stream of writes, one read for several of them.
                    tokio::time::sleep(COALESCE).await;
                }
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
    async fn read_once(&self, gap: &mut Option<Gap>) -> Result<bool, conduit_store::DbError> {
        // Taken before the read: a transaction ended by then has its rows in the read, so a
        // gap it would have filled and that the read still shows is final.
        let before = match gap {
            Some(_) => self.store.transactions(Bound::Oldest).await?,
            None => None,
        };
        let from = self.hub.delivered();
        let rows = self.store.notifications_after(from, BATCH).await?;
        let full = rows.len() as i64 == BATCH;
        let mut expected = from + 1;
        for (id, notification) in rows {
            if id != expected {
                match gap.as_ref() {
                    Some(seen) if seen.at == expected => {
                        let ended = matches!(before, Some(oldest) if oldest >= seen.running_below);
                        if ended {
                            tracing::debug!(from = expected, to = id - 1, "notification ids gone or rolled back");
                        } else if seen.since.elapsed() >= GAP_GRACE {
                            tracing::warn!(
                                from = expected,
                                to = id - 1,
                                "notification ids not committed within the grace; passed over"
                            );
                        } else {
                            return Ok(false);
                        }
                    }
                    _ => {
                        // Taken after the read: every transaction running then is below it.
                        if let Some(newest) = self.store.transactions(Bound::Newest).await? {
                            *gap = Some(Gap { at: expected, since: Instant::now(), running_below: newest });
                            return Ok(false);
                        }
                        // One writer: the ids are gone for good.
                    }
                }
            }
            *gap = None;
            let to = match &notification {
                // A new article goes to the author's followers; read only when streams are open.
                Some(n) if n.kind == Kind::Article && self.hub.open() > 0 => self.store.follower_ids(n.user).await?,
                Some(n) if n.kind != Kind::Article => vec![n.user],
                _ => Vec::new(),
            };
            // Written once, and only when someone here listens.
            self.hub.deliver(id, &to, || notification.map(|n| Event { id, frame: sse::notification(id, n) }));
            expected = id + 1;
        }
        Ok(full && gap.is_none())
    }
}

/// A gap in the ids, as first seen.
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    /// Its first missing id.
    at: i64,
    since: Instant,
    /// Every transaction running when it was seen was below this; once the oldest running one
    /// is not, they all ended.
    running_below: i64,
}
