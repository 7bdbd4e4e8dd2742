//! PostgreSQL's change feed for the cache: hears every change to the users and articles tables
//! (the `users_notify_changed` and `articles_notify_changed` triggers' `NOTIFY`) and drops what
//! changed from a [`Cache`], which is only used while this listens (see
//! `conduit_store::Cached`). User changes are acknowledged to the instance that made them, which
//! waits for every listener before it answers: so a revocation holds on every instance by the
//! time its request returns.

use std::sync::Weak;
use std::time::Duration;

use conduit_store::cache::Ack;
use conduit_store::{Cache, ChangeFeed};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgNotification, PgPoolOptions};

use crate::PgStore;

/// The trigger's channel (migration `20261124000004_user_change_notices.sql`); the payload is
/// the user's id.
const CHANGED: &str = "conduit_user_changed";
/// The articles trigger's channel (migration `20261124000005_article_change_notices.sql`); the
/// payload is the article's slug before the change.
const ARTICLE_CHANGED: &str = "conduit_article_changed";
/// Where listeners acknowledge a user change notice; the payload is an [`Ack`].
const HEARD: &str = "conduit_user_change_heard";
/// The listening connections' `application_name`, by which a writer counts them.
const LISTENER_NAME: &str = "conduit change listener";
/// Between attempts to listen again after the connection was lost.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// PostgreSQL's [`ChangeFeed`]: a listening connection of its own, for as long as the
/// store's pool is open. From [`PgStore::notice_feed`].
pub struct NoticeFeed {
    pool: PgPool,
    options: PgConnectOptions,
}

impl PgStore {
    /// What tells a cache of this database's changes (see `conduit_store::Cached`).
    pub fn notice_feed(&self) -> NoticeFeed {
        NoticeFeed { pool: self.write.clone(), options: self.options.clone() }
    }
}

#[async_trait::async_trait]
impl ChangeFeed for NoticeFeed {
    /// Listens in the background; waits until listening, or until `wait` ran out (the cache
    /// then stays unused until the listener gets through).
    async fn start(&self, cache: Weak<Cache>, wait: Duration) -> bool {
        let (listening_tx, listening_rx) = tokio::sync::oneshot::channel();
        let closed = self.pool.close_event();
        // PostgreSQL probes an idle listener's connection, so one whose instance vanished
        // without closing it (a host lost, a network cut) leaves `pg_stat_activity` within
        // about 25 s instead of the system default of hours: until then every user change would
        // wait the full second for its acknowledgement.
        let keepalives =
            [("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3")];
        let options = self.options.clone().application_name(LISTENER_NAME).options(keepalives);
        tokio::spawn(follow(closed, options, cache, listening_tx));
        let listening = matches!(tokio::time::timeout(wait, listening_rx).await, Ok(Ok(())));
        if !listening {
            tracing::warn!("not yet listening for changes: users and articles are read from PostgreSQL until then");
        }
        listening
    }

    /// The listening connections of every instance on this database.
    async fn listeners(&self) -> usize {
        let listeners = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = $1"#,
            LISTENER_NAME
        )
        .fetch_one(&self.pool)
        .await
        // Cannot count them: this instance's row is dropped at least; the others hear the
        // notice in their own time.
        .unwrap_or(0);
        usize::try_from(listeners).unwrap_or(0)
    }
}

/// Listens until the store's pool closes or the cache is gone, again after each lost
/// connection; the cache is used only while this listens.
async fn follow(
    closed: sqlx::pool::CloseEvent,
    options: PgConnectOptions,
    cache: Weak<Cache>,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    // Its own connection, so the store's pool keeps its full size.
    let own = PgPoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None).connect_lazy_with(options);
    let mut listening = Some(listening);
    tokio::pin!(closed);
    let mut failures = 0u32;
    loop {
        let mut got_through = false;
        let outcome = tokio::select! {
            outcome = listen(&own, &cache, &mut listening, &mut got_through) => outcome,
            () = &mut closed => Ok(()),
        };
        let Some(live) = cache.upgrade() else { break };
        // Not listening any more: what changes now would go unheard.
        live.set_listening(false);
        match outcome {
            Ok(()) => break,
            Err(error) => {
                failures = if got_through { 1 } else { failures + 1 };
                if failures == 1 || failures.is_multiple_of(60) {
                    tracing::warn!(%error, "stopped hearing changes: users and articles are read from PostgreSQL until it is back");
                }
                tokio::select! {
                    () = tokio::time::sleep(RETRY_EVERY) => {}
                    () = &mut closed => break,
                }
            }
        }
    }
    own.close().await;
}

/// One listening connection from `own`, for as long as it lasts: an error when it is lost,
/// `Ok` when the cache is gone. Once it listens, the cache is used (`got_through`), and the
/// first time `listening` is told.
async fn listen(
    own: &PgPool,
    cache: &Weak<Cache>,
    listening: &mut Option<tokio::sync::oneshot::Sender<()>>,
    got_through: &mut bool,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(own).await?;
    listener.eager_reconnect(false);
    listener.listen_all([CHANGED, HEARD, ARTICLE_CHANGED]).await?;
    let Some(live) = cache.upgrade() else { return Ok(()) };
    live.set_listening(true);
    drop(live);
    *got_through = true;
    if let Some(tx) = listening.take() {
        let _ = tx.send(());
    }
    tracing::info!("listening for changes: users and anonymous article views are cached");
    loop {
        let Some(notice) = listener.try_recv().await? else {
            return Err(sqlx::Error::Protocol("the connection was lost".into()));
        };
        let Some(live) = cache.upgrade() else { return Ok(()) };
        hear(&mut listener, &live, &notice).await?;
    }
}

/// Drops from `cache` what one notice says changed. A user change is then acknowledged to
/// every instance (the one that made it waits for that).
async fn hear(listener: &mut PgListener, cache: &Cache, notice: &PgNotification) -> Result<(), sqlx::Error> {
    match notice.channel() {
        HEARD => {
            if let Some(ack) = Ack::decode(notice.payload()) {
                cache.acknowledged(ack);
            }
        }
        ARTICLE_CHANGED => cache.article_changed(Some(notice.payload())),
        _ => {
            // Anything but a user id is unexpected: then assume anyone changed.
            let id = notice.payload().parse().ok();
            cache.user_changed(id);
            let ack = Ack { user: id, instance: cache.instance() }.encode();
            sqlx::query("SELECT pg_notify($1, $2)").bind(HEARD).bind(ack).execute(&mut *listener).await?;
        }
    }
    Ok(())
}
