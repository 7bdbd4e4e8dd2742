//! Notifications, live (README "Notifications"): the streams open on this instance ([`hub`]),
//! the tail that feeds them from the database in id order ([`tail`]), and the words instances
//! send each other through Redis so a notification written on one reaches streams on another
//! within milliseconds ([`wake`]), and a stream's text as it goes out ([`sse`]). The inbox
//! itself is the store's; the routes are in `routes::notifications`.
//!
//! Nothing here is on a write's path but [`Notifier::committed`] (or [`Notifier::written`]):
//! what the write committed put in a queue, two wake-ups, no I/O. A notification written
//! here is handed to this instance's streams as it is ([`Handed`]) instead of being read back
//! from the database: with 10,000 streams open, reading back each write's notifications was
//! the larger part of what the streams cost the writes (BENCHMARKS.md, "Notifications").

pub mod hub;
pub mod sse;
pub mod tail;
pub mod view;
pub mod wake;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conduit_domain::User;
use conduit_store::Store;
use conduit_store::notifications::{Actor, Kind, Notification, Written};
use tokio::sync::Notify;

use crate::ops::redis::Redis;
use hub::Hub;

/// What a route reaches: the hub, and the wake-ups after a write.
pub struct Notifier {
    pub hub: Arc<Hub>,
    /// How often an idle stream is sent a comment line (`CONDUIT_NOTIFICATIONS_KEEP_ALIVE`).
    pub keep_alive: Duration,
    wake: Arc<Notify>,
    publish: Option<Arc<Notify>>,
    handed: Arc<Handed>,
}

/// The most notifications written here that wait to be handed out, in the queue and again
/// while a gap before them is read (`tail`): past it they are left to the database read, which
/// finds them when their turn comes, so a stalled tail holds no more than this.
pub const HANDED_LIMIT: usize = 2_000;

/// Notifications written here, as their writes committed them, waiting for the tail to hand
/// them out in id order (`tail`).
#[derive(Default)]
pub struct Handed {
    queue: Mutex<Vec<Notification>>,
    ready: Notify,
}

impl Handed {
    /// Takes what is waiting.
    pub fn take(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Resolves once something was handed since the last call.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    fn push(&self, notices: impl Iterator<Item = Notification>) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let room = HANDED_LIMIT.saturating_sub(queue.len());
        queue.extend(notices.take(room));
        drop(queue);
        self.ready.notify_one();
    }
}

/// What a write here is about, as its notifications name it: who did it, on which article
/// (slug, title), with which comment (id, body).
pub struct About<'a> {
    pub actor: &'a User,
    pub article: Option<(&'a str, &'a str)>,
    pub comment: Option<(i64, &'a str)>,
}

/// How many characters of a comment a notification quotes (the view `notifications_read`'s
/// `substr(c.body, 1, 200)`).
const EXCERPT_CHARS: usize = 200;

impl About<'_> {
    /// `written` as a reader of the database would find it (`notifications_read`).
    fn notification(&self, written: Written) -> Notification {
        Notification {
            id: written.id,
            user: written.user,
            kind: written.kind,
            actor: Some(Actor { username: self.actor.username.clone(), image: self.actor.image.clone() }),
            article: self.article.map(|(slug, title)| (slug.to_owned(), title.to_owned())),
            comment: self.comment.map(|(id, body)| (id, body.chars().take(EXCERPT_CHARS).collect())),
            others: written.others,
            action: None,
            detail: None,
            created_at: written.created_at,
            // A new article's notice is born read (it is for the streams only).
            read: written.kind == Kind::Article,
        }
    }
}

impl Notifier {
    /// A stream opened: the tail looks now (while no stream was open it looked only now and
    /// then), so what came since reaches the stream at once.
    pub fn stream_opened(&self) {
        self.wake.notify_one();
    }

    /// A write here committed `written` (what `conduit_store::notifications::written_by` gave
    /// back), about `about`: other instances are told to look, and this one's streams are
    /// handed them without a read. Nothing written: nobody is told anything.
    pub fn committed(&self, written: Vec<Written>, about: About<'_>) {
        if written.is_empty() {
            return;
        }
        if let Some(publish) = &self.publish {
            publish.notify_one();
        }
        // With no stream open here, the tail reads them when one opens (or at its next look).
        if self.hub.open() > 0 {
            self.handed.push(written.into_iter().map(|w| about.notification(w)));
        }
    }

    /// A write that may have notified someone was committed here, and what it wrote is not at
    /// hand: the tail looks now, and other instances are told to.
    pub fn written(&self) {
        self.wake.notify_one();
        if let Some(publish) = &self.publish {
            publish.notify_one();
        }
    }
}

/// Starts the tail (and, with Redis, the words between instances). Streams opened from now on
/// get every notification after the newest one written before this.
pub async fn start(
    store: Arc<dyn Store>,
    redis: Option<(&Redis, &str)>,
    keep_days: u32,
    keep_alive: Duration,
) -> anyhow::Result<Arc<Notifier>> {
    let newest = store.newest_notification().await?;
    let hub = Hub::new(newest);
    let wake = Arc::new(Notify::new());
    let handed = Arc::new(Handed::default());
    let heard = Arc::new(AtomicBool::new(false));
    let publish = match redis {
        Some((pool, url)) => {
            let publish = Arc::new(Notify::new());
            wake::publisher(pool.clone(), publish.clone(), hub.closing());
            wake::subscriber(url, wake.clone(), heard.clone(), hub.closing()).await?;
            Some(publish)
        }
        None => None,
    };
    // Another process (a second instance, `conduit` commands) may write too: without Redis
    // the tail looks every 100 ms (an index probe that finds nothing, most of the time).
    prune_every_hour(store.clone(), keep_days, hub.closing());
    let tail = tail::Tail {
        store,
        hub: hub.clone(),
        wake: wake.clone(),
        handed: handed.clone(),
        heard,
        poll: Duration::from_millis(100),
        poll_heard: Duration::from_secs(1),
    };
    tokio::spawn(tail.run());
    Ok(Arc::new(Notifier { hub, keep_alive, wake, publish, handed }))
}

/// Drops notifications older than `keep_days`, a minute after start and every hour after (on
/// every instance: what one dropped, the others find gone).
fn prune_every_hour(store: Arc<dyn Store>, keep_days: u32, mut closing: tokio::sync::watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut wait = Duration::from_secs(60);
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = closing.changed() => return,
            }
            wait = Duration::from_secs(3600);
            let before = chrono::Utc::now() - chrono::Duration::days(i64::from(keep_days));
            match store.prune_notifications(before).await {
                Ok(0) => {}
                Ok(dropped) => tracing::info!(dropped, keep_days, "old notifications dropped"),
                Err(e) => tracing::warn!(error = %e, "cannot drop old notifications; trying again in an hour"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(id: i64) -> Notification {
        Notification {
            id,
            user: conduit_domain::model::UserId::new(1),
            kind: Kind::Follow,
            actor: None,
            article: None,
            comment: None,
            others: 0,
            action: None,
            detail: None,
            created_at: chrono::Utc::now(),
            read: false,
        }
    }

    #[test]
    fn a_tail_that_does_not_take_holds_no_more_than_the_limit() {
        let handed = Handed::default();
        for id in 0..3 * HANDED_LIMIT as i64 {
            handed.push(std::iter::once(notice(id)));
        }
        let taken = handed.take();
        assert_eq!(taken.len(), HANDED_LIMIT);
        assert_eq!(taken.last().map(|n| n.id), Some(HANDED_LIMIT as i64 - 1), "the first kept, in order");
        handed.push((0..5).map(notice));
        assert_eq!(handed.take().len(), 5, "room again once taken");
    }
}
