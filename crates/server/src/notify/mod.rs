//! Notifications, live (README "Notifications"): the streams open on this instance ([`hub`]),
//! the tail that feeds them from the database in id order ([`tail`]), and the words instances
//! send each other through Redis so a notification written on one reaches streams on another
//! within milliseconds ([`wake`]), and a stream's text as it goes out ([`sse`]). The inbox
//! itself is the store's; the routes are in `routes::notifications`.
//!
//! Nothing here is on a write's path but [`Notifier::written`]: two wake-ups, no I/O.

pub mod hub;
pub mod sse;
pub mod tail;
pub mod view;
pub mod wake;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use conduit_store::Store;
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
}

impl Notifier {
    /// A stream opened: the tail looks now (while no stream was open it looked only now and
    /// then), so what came since reaches the stream at once.
    pub fn stream_opened(&self) {
        self.wake.notify_one();
    }

    /// A write that may have notified someone was committed here: the tail looks now, and
    /// other instances are told to.
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
        heard,
        poll: Duration::from_millis(100),
        poll_heard: Duration::from_secs(1),
    };
    tokio::spawn(tail.run());
    Ok(Arc::new(Notifier { hub, keep_alive, wake, publish }))
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
