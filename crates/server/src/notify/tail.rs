//! Reads every new notification in id order and hands it to the [`Hub`]: one query for all of
//! an instance's streams, run when woken (a word from another instance through Redis, a stream
//! opening) and every [`Tail::poll`] besides. What a write on this instance committed is handed
//! to it as it is ([`Handed`]) and goes out without a read when it is next in order; when it is
//! not (a gap before it: another instance's write, or a write when no stream was open), the
//! tail reads the database as for any other, and drops what the read covered.
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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conduit_store::notifications::{Kind, Notification};
use conduit_store::{Bound, DbError, Store};
use tokio::sync::Notify;

use super::Handed;
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
    /// What writes here committed (see the module's doc).
    pub handed: Arc<Handed>,
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
        // Handed notifications not yet next in order, by id.
        let mut waiting: BTreeMap<i64, Notification> = BTreeMap::new();
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
                () = self.handed.ready() => {
                    for n in self.handed.take() {
                        if n.id > self.hub.delivered() && waiting.len() < super::HANDED_LIMIT {
                            waiting.insert(n.id, n);
                        }
                    }
                    match self.hand_out_waiting(&mut waiting).await {
                        Ok(()) if waiting.is_empty() => continue,
                        // A gap before them: the database is read for it (after the same
                        // gathering as a wake-up), and the read covers them too.
                        Ok(()) => tokio::time::sleep(COALESCE).await,
                        Err(e) => tracing::warn!(error = %e, "cannot hand out new notifications; reading them"),
                    }
                }
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
            let delivered = self.hub.delivered();
            waiting.retain(|id, _| *id > delivered);
        }
    }

    /// Hands out the waiting notifications that are next in order.
    async fn hand_out_waiting(&self, waiting: &mut BTreeMap<i64, Notification>) -> Result<(), DbError> {
        while let Some(entry) = waiting.first_entry() {
            if *entry.key() != self.hub.delivered() + 1 {
                break;
            }
            let (id, n) = entry.remove_entry();
            self.hand_out(id, Some(n)).await?;
            self.hub.handed_on.inc();
        }
        Ok(())
    }

    /// Hands notification `id` to the streams of whom it is for (`None`: it is gone, and only
    /// its id counts).
    async fn hand_out(&self, id: i64, notification: Option<Notification>) -> Result<(), DbError> {
        let to = match &notification {
            // A new article goes to the author's followers; read only when streams are open.
            Some(n) if n.kind == Kind::Article && self.hub.open() > 0 => self.store.follower_ids(n.user).await?,
            Some(n) if n.kind != Kind::Article => vec![n.user],
            _ => Vec::new(),
        };
        // Written once, and only when someone here listens.
        self.hub.deliver(id, &to, || notification.map(|n| Event { id, frame: sse::notification(id, n) }));
        Ok(())
    }

    /// Reads and hands out one batch; true when a full batch was read (there may be more).
    async fn read_once(&self, gap: &mut Option<Gap>) -> Result<bool, DbError> {
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
            self.hand_out(id, notification).await?;
            self.hub.read_back.inc();
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
