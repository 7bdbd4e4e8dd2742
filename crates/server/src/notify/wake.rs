//! Instances tell each other of new notifications through Redis: one publish per burst of
//! writes here (coalesced: a word says "look", not what), and one subscribing connection per
//! instance, whatever the number of streams. A word only wakes the tail, which reads the
//! database: so a word lost while Redis is away loses nothing, and the tail looks by itself
//! often while nothing is heard (see `tail`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use fred::prelude::*;
use tokio::sync::{Notify, watch};

use crate::ops::redis::Redis;

/// The channel every instance publishes to and listens on.
pub const CHANNEL: &str = "conduit:notifications";

/// How often the subscribing connection's state is looked at.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Publishes a word whenever `publish` is notified (several notifications before the publish
/// runs make one word), until `closing`.
pub fn publisher(redis: Redis, publish: Arc<Notify>, mut closing: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = publish.notified() => {}
                _ = closing.changed() => return,
            }
            if let Err(e) = redis.next().publish::<(), _, _>(CHANNEL, "n").await {
                // The other instances' tails look by themselves meanwhile.
                tracing::debug!(error = %e, "cannot tell other instances of a notification");
            }
        }
    });
}

/// Subscribes to [`CHANNEL`] on its own connection: every word wakes `wake`; `heard` says
/// whether the connection is up (when it comes back, the tail is woken to catch up).
pub async fn subscriber(
    url: &str,
    wake: Arc<Notify>,
    heard: Arc<AtomicBool>,
    mut closing: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let config = Config::from_url(url).context("invalid REDIS_URL")?;
    let client = Builder::from_config(config)
        .with_connection_config(|c| c.connection_timeout = Duration::from_secs(2))
        .set_policy(ReconnectPolicy::new_constant(0, 250))
        .build_subscriber_client()
        .context("cannot set up the Redis subscriber")?;
    let _tasks = client.init().await.context("cannot connect the Redis subscriber")?;
    let _resubscribe = client.manage_subscriptions();
    client.subscribe(CHANNEL).await.context("cannot subscribe to notifications")?;
    heard.store(true, Ordering::Release);
    let mut messages = client.message_rx();
    tokio::spawn(async move {
        let mut check = tokio::time::interval(CHECK_EVERY);
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(_) => wake.notify_one(),
                    // Lagged: words were dropped; one look covers them all.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => wake.notify_one(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = check.tick() => {
                    let up = client.is_connected();
                    if up && !heard.load(Ordering::Acquire) {
                        tracing::info!("hearing other instances' notifications again");
                        wake.notify_one();
                    } else if !up && heard.load(Ordering::Acquire) {
                        tracing::warn!("Redis is away: the streams read new notifications from the database meanwhile");
                    }
                    heard.store(up, Ordering::Release);
                }
                _ = closing.changed() => {
                    let _ = client.quit().await;
                    return;
                }
            }
        }
    });
    Ok(())
}
