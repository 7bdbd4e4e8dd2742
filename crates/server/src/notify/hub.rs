//! The streams open on this instance, by user, and the notifications handed to them.
//!
//! Each stream has a bounded queue ([`QUEUE`]). A burst that fills it does not wait or grow:
//! the stream is marked lagging and handed nothing more; once it has sent what its queue held,
//! it reads what it missed from the database and goes on ([`Subscription::lagging`]). A stream
//! still lagging after [`LAG_LIMIT`] is a reader that stopped reading: it is dropped at the next
//! notification for it (its client resumes from its last id when it comes back). So a stream
//! holds at most its queue, whatever its client does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use conduit_domain::model::UserId;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{mpsc, watch};

/// Notifications waiting for one stream at most.
pub const QUEUE: usize = 64;

/// The most streams one person holds open on one instance: a browser needs one, a few tabs or
/// devices a few more; past this, an account with a fresh login could hold the instance's
/// memory from many addresses (the per-address connection cap bounds one address only).
pub const STREAMS_PER_USER: usize = 16;

/// A stream that has not caught up this long after its queue filled is dropped.
pub const LAG_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One notification as a stream sends it: its id and its Server-Sent Events text
/// ([`super::sse::frame`]), written once however many streams of its recipients are open.
#[derive(Debug)]
pub struct Event {
    pub id: i64,
    pub frame: axum::body::Bytes,
}

/// One open stream: its key (to take it off when it ends), its queue, and since when it lags
/// (milliseconds since the hub started, plus one; 0 while it does not).
struct Stream {
    key: u64,
    queue: mpsc::Sender<Arc<Event>>,
    lagging: Arc<AtomicU64>,
}

#[derive(Default)]
struct Streams {
    by_user: HashMap<UserId, Vec<Stream>>,
    open: usize,
    /// The hub closed: no stream is kept from then on.
    closed: bool,
}

/// See the module's doc.
pub struct Hub {
    streams: Mutex<Streams>,
    next: AtomicU64,
    /// Every notification up to this id has been handed to the streams (or never will be).
    delivered: AtomicI64,
    closing: watch::Sender<bool>,
    started: std::time::Instant,
    /// Notifications handed out as a write here committed them, and as read back from the
    /// database (`/metrics`: `conduit_notifications_handed_total`, `..._read_total`).
    pub handed_on: Counter,
    pub read_back: Counter,
}

/// An open stream's end: notifications for its user arrive on `events`, which ends when the
/// hub closes or drops the stream; dropping it takes the stream off the hub.
pub struct Subscription {
    pub events: mpsc::Receiver<Arc<Event>>,
    pub user: UserId,
    key: u64,
    lagging: Arc<AtomicU64>,
    hub: Arc<Hub>,
}

impl Subscription {
    /// Whether notifications were held back from this stream since it last caught up; clears
    /// the mark (whatever is handed out after this is queued, or marks it again).
    pub fn lagging(&self) -> bool {
        self.lagging.swap(0, Ordering::AcqRel) != 0
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        if let Some(list) = streams.by_user.get_mut(&self.user) {
            let before = list.len();
            list.retain(|stream| stream.key != self.key);
            let removed = before - list.len();
            if list.is_empty() {
                streams.by_user.remove(&self.user);
            }
            streams.open -= removed;
        }
    }
}

impl Hub {
    pub fn new(delivered: i64) -> Arc<Hub> {
        Arc::new(Hub {
            streams: Mutex::new(Streams::default()),
            next: AtomicU64::new(0),
            delivered: AtomicI64::new(delivered),
            closing: watch::channel(false).0,
            started: std::time::Instant::now(),
            handed_on: Counter::default(),
            read_back: Counter::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a stream for `user`; `None` when they hold [`STREAMS_PER_USER`] here already.
    /// Notifications up to [`Hub::delivered`] read just after this returns are not sent to it:
    /// the caller reads those from the database.
    pub fn subscribe(self: &Arc<Self>, user: UserId) -> Option<Subscription> {
        let (queue, events) = mpsc::channel(QUEUE);
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let lagging = Arc::new(AtomicU64::new(0));
        let mut streams = self.lock();
        if !streams.closed {
            let list = streams.by_user.entry(user).or_default();
            if list.len() >= STREAMS_PER_USER {
                return None;
            }
            list.push(Stream { key, queue, lagging: lagging.clone() });
            streams.open += 1;
        }
        // Once closed, `queue` is dropped here: the stream sends its first events and ends.
        drop(streams);
        Some(Subscription { events, user, key, lagging, hub: self.clone() })
    }

    /// The id through which every notification was handed out.
    pub fn delivered(&self) -> i64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Records `id` as delivered, then hands out the event `make` gives (made only when one of
    /// `to` has a stream here) to their streams: called with every id in order.
    ///
    /// Both under the lock a new stream registers under: a stream registered before gets the
    /// event, one registered after finds `id` recorded and reads it from the database. Recorded
    /// before handing out: a stream that lagged and catches up reads the database up to what
    /// it finds recorded, which then covers whatever was held back from it.
    pub fn deliver(&self, id: i64, to: &[UserId], make: impl FnOnce() -> Option<Event>) {
        let mut streams = self.lock();
        self.delivered.store(id, Ordering::Release);
        if !to.iter().any(|user| streams.by_user.contains_key(user)) {
            return;
        }
        if let Some(event) = make() {
            let event = Arc::new(event);
            for user in to {
                let Some(list) = streams.by_user.get_mut(user) else {
                    continue;
                };
                let before = list.len();
                let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1;
                let limit = u64::try_from(LAG_LIMIT.as_millis()).unwrap_or(u64::MAX);
                list.retain(|stream| {
                    let since = stream.lagging.load(Ordering::Acquire);
                    if since != 0 {
                        // Lagging: it reads this from the database when it catches up, unless
                        // it stopped reading; then dropping its queue ends it.
                        return now.saturating_sub(since) < limit;
                    }
                    match stream.queue.try_send(event.clone()) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            stream.lagging.store(now, Ordering::Release);
                            true
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    }
                });
                let dropped = before - list.len();
                if list.is_empty() {
                    streams.by_user.remove(user);
                }
                streams.open -= dropped;
                if dropped > 0 {
                    tracing::debug!(user = user.get(), dropped, "a stream stopped reading and was dropped");
                }
            }
        }
    }

    /// Changes to true when the hub closes.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every stream (shutdown): each sends what it holds and closes (its queue's sender
    /// is dropped here, so no stream waits on anything to learn it).
    pub fn close(&self) {
        let mut streams = self.lock();
        streams.closed = true;
        streams.by_user.clear();
        streams.open = 0;
        drop(streams);
        self.closing.send_replace(true);
    }
}
