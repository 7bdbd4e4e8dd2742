//! Notifications as the stores keep them (README "Notifications"): a person's inbox, each
//! written in the transaction of the event that causes it, and read back in the order of their
//! ids, which also order the live stream.

use std::cell::RefCell;
use std::future::Future;

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;

/// How many notifications a person keeps at most: past it, the oldest go (a few more may stand
/// for a moment: the trim runs on every [`TRIM_EVERY`]th notification written).
pub const KEEP_PER_USER: i64 = 500;

/// A person's notifications are trimmed to [`KEEP_PER_USER`] when the id of one written to
/// them is a multiple of this: the trim walks their newest few hundred, so running it on every
/// write would cost more than the write.
pub const TRIM_EVERY: i64 = 16;

/// The most new articles by followed authors a stream resuming is given; past it, the client
/// is told to start over (its feed lists them).
pub const REPLAY_ARTICLES: i64 = 1000;

/// A comment tells of itself to the authors of at most this many of the article's latest
/// comments (a "reply" in a thread they took part in): a bound on what one comment writes.
pub const REPLY_FANOUT_COMMENTS: i64 = 200;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `actor` followed the recipient.
    Follow,
    /// `actor` commented on the recipient's article.
    Comment,
    /// `actor` commented on an article the recipient had commented on.
    Reply,
    /// `actor` (and `others` before them, since the recipient last read) favorited the
    /// recipient's article.
    Favorite,
    /// A moderator acted on the recipient's content or account (`action`, `detail`).
    Moderation,
    /// `actor`, whom the recipient follows, published `article`. One row for all the author's
    /// followers, on the streams only (the feed is its list): `user` is the author.
    Article,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Follow => "follow",
            Kind::Comment => "comment",
            Kind::Reply => "reply",
            Kind::Favorite => "favorite",
            Kind::Moderation => "moderation",
            Kind::Article => "article",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Kind::Follow, Kind::Comment, Kind::Reply, Kind::Favorite, Kind::Moderation, Kind::Article]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Who did what, as the recipient reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Orders every notification ever written: the stream's event id.
    pub id: i64,
    /// The recipient; for a new article ([`Kind::Article`]), its author, whose followers get it.
    pub user: UserId,
    pub kind: Kind,
    /// Who did it (none for a moderator's action: moderators act for the site).
    pub actor: Option<Actor>,
    /// The article it is about: its slug and title.
    pub article: Option<(String, String)>,
    /// The comment it is about: its id and its first 200 characters.
    pub comment: Option<(i64, String)>,
    /// For a favorite: how many others favorited before `actor`.
    pub others: i64,
    /// For a moderation notice: the action (`hide`, `unhide`, `delete`, `suspend`,
    /// `unsuspend`) and what it was about, as the moderation log names it.
    pub action: Option<String>,
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
    pub image: Option<String>,
}

/// Notifications as the tail of the whole table gives them: every id in order, with the ones
/// whose actor, article or comment is gone as `None` (they are not shown, but their ids count:
/// a reader of the tail must see every id to tell a gap from a deletion).
pub type Tailed = (i64, Option<Notification>);

/// Where a person's stream resumes from, given the last id their client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Everything after it is still kept.
    Exact,
    /// Some of what came after it was dropped (by age or by the per-person bound): the client
    /// must read the inbox afresh.
    TooOld,
}

/// A notification as its write committed it: what this process's own streams are handed
/// without reading it back (`notify` in the server). The rest of what a reader sees (who,
/// which article, which comment) the writer has at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: i64,
    /// The recipient; for a new article ([`Kind::Article`]), its author.
    pub user: UserId,
    pub kind: Kind,
    /// For a favorite: how many others favorited before this one (see [`Notification::others`]).
    pub others: i64,
    /// As stored: to the microsecond, which both databases keep.
    pub created_at: DateTime<Utc>,
}

tokio::task_local! {
    static WRITTEN: RefCell<Vec<Written>>;
}

/// Runs `write` (store calls) and gives back, with its outcome, every notification it
/// committed. Only a store's write knows the ids it was given; a task-local carries them out
/// so that no write's signature changes for what only the streams need.
pub async fn written_by<F: Future>(write: F) -> (F::Output, Vec<Written>) {
    WRITTEN
        .scope(RefCell::new(Vec::new()), async move {
            let outcome = write.await;
            (outcome, WRITTEN.with(|written| written.take()))
        })
        .await
}

/// Called by a store once the transaction that wrote `written` committed: kept for the
/// [`written_by`] around the call, if there is one (none: nobody asked).
pub fn committed(written: Vec<Written>) {
    if !written.is_empty() {
        let _ = WRITTEN.try_with(|kept| kept.borrow_mut().extend(written));
    }
}

/// What a notification's time is stored as (PostgreSQL keeps microseconds; SQLite is given
/// the same), so that what a write hands on is what a later read gives.
pub fn stored_time(now: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    now.trunc_subsecs(6)
}
