//! The streams open on this instance, by user, and the notifications handed to them.
//!
//! Each stream has a bounded queue ([`QUEUE`]): a reader that stops reading fills it, and the
//! next notification for it drops the stream instead of waiting or growing (its client
//! reconnects with its last id and is given what it missed from the database).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use conduit_domain::model::UserId;
use tokio::sync::{mpsc, watch};

/// Notifications waiting for one stream at most.
pub const QUEUE: usize = 64;

/// One notification as a stream sends it: its id and its JSON, written once however many
/// streams of its recipient are open.
#[derive(Debug)]
pub struct Event {
    pub id: i64,
    pub json: String,
}

/// One open stream: its key (to take it off when it ends) and its queue.
type Stream = (u64, mpsc::Sender<Arc<Event>>);

#[derive(Default)]
struct Streams {
    by_user: HashMap<UserId, Vec<Stream>>,
    open: usize,
}

/// See the module's doc.
pub struct Hub {
    streams: Mutex<Streams>,
    next: AtomicU64,
    /// Every notification up to this id has been handed to the streams (or never will be).
    delivered: AtomicI64,
    closing: watch::Sender<bool>,
}

/// An open stream's end: notifications for its user arrive on `events`; dropping it takes the
/// stream off the hub.
pub struct Subscription {
    pub events: mpsc::Receiver<Arc<Event>>,
    pub closing: watch::Receiver<bool>,
    user: UserId,
    key: u64,
    hub: Arc<Hub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.hub.lock();
        if let Some(list) = streams.by_user.get_mut(&self.user) {
            let before = list.len();
            list.retain(|(key, _)| *key != self.key);
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
        })
    }

    fn lock(&self) -> MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a stream for `user`. Notifications up to [`Hub::delivered`] read just after this
    /// returns are not sent to it: the caller reads those from the database.
    pub fn subscribe(self: &Arc<Self>, user: UserId) -> Subscription {
        let (sender, events) = mpsc::channel(QUEUE);
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.lock();
        streams.by_user.entry(user).or_default().push((key, sender));
        streams.open += 1;
        drop(streams);
        Subscription { events, closing: self.closing.subscribe(), user, key, hub: self.clone() }
    }

    /// The id through which every notification was handed out.
    pub fn delivered(&self) -> i64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.lock().open
    }

    /// Hands out `event` (if `Some`) to the streams of each of `to` that has any, then records
    /// `id` as delivered: called with every id in order.
    pub fn deliver(&self, id: i64, to: &[UserId], event: Option<Event>) {
        if let Some(event) = event {
            let event = Arc::new(event);
            let mut streams = self.lock();
            for user in to {
                let Some(list) = streams.by_user.get_mut(user) else {
                    continue;
                };
                let before = list.len();
                // A full queue: a reader that stopped reading. Dropping its sender ends its
                // stream; the client resumes from its last id.
                list.retain(|(_, sender)| sender.try_send(event.clone()).is_ok());
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
        self.delivered.store(id, Ordering::Release);
    }

    /// Whether anybody on this instance listens for any of `users`.
    pub fn listens(&self, users: &[UserId]) -> bool {
        let streams = self.lock();
        users.iter().any(|user| streams.by_user.contains_key(user))
    }

    /// Changes to true when the hub closes.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every stream (shutdown): each sends what it holds and closes.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}
