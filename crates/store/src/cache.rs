//! What a process keeps of the database in memory: users by id (authentication loads the
//! caller on every request), anonymous views of articles by slug, and the tag list. Each is a
//! [`NoticedMap`]: used only while the backend's [`ChangeFeed`](crate::ChangeFeed) hears of
//! every change, from any process. PostgreSQL is told: triggers `NOTIFY` each changed user or
//! article (store-postgres, `notice_feed`). SQLite looks: before each use, one read of its
//! WAL index header says whether anything at all was committed since, and if so the whole
//! cache is dropped (store-sqlite, `commit_watch`). [`Cached`](crate::Cached) uses it.
//!
//! Revocation must take effect at once on every instance, not merely soon: so each instance
//! acknowledges every user change notice once it has dropped the row, and the instance that
//! made the change waits for all of them ([`Cache::forget`]) before it answers. Article notices
//! are not acknowledged: an anonymous reader on another instance may see the old view for the
//! milliseconds the notice takes.

use std::time::Duration;

use conduit_domain::model::UserId;
use conduit_domain::{Article, User};
use tokio::sync::broadcast;

use crate::noticed::NoticedMap;

/// How long a writer waits for the other instances' acknowledgements (see [`Cache::forget`]).
const ACK_WAIT: Duration = Duration::from_secs(1);

/// Users kept at most (a few hundred bytes each): every signed-in user active at once, up to
/// this, is read from memory. 10,000 open notification streams are 10,000 users, and a map
/// that filled up started again empty, the writers' rows with it (BENCHMARKS.md,
/// "Notifications").
const USERS: usize = 16_384;

pub struct Cache {
    /// Users by id. Change them through [`Cache::user_changed`] and [`Cache::forget`], which also
    /// drop the articles that show them.
    pub users: NoticedMap<UserId, User>,
    /// Anonymous views of articles by slug (they show their author's profile).
    pub articles: NoticedMap<String, Article>,
    /// The tag list, most used first; kept only when the change feed tells of new articles
    /// (SQLite's does; PostgreSQL sends no notice for a new article, since a notice would
    /// serialise article creation: there the list is read from its maintained counts each time).
    pub tags: NoticedMap<(), Vec<String>>,
    /// Where the feed does not tell of new articles: the tag list with the tags' version it was
    /// read at (`Store::tags_version`), checked against the database on each use.
    pub versioned_tags: NoticedMap<(), (i64, Vec<String>)>,
    /// This process's name in acknowledgements.
    instance: u64,
    acks: broadcast::Sender<Ack>,
}

/// An instance has dropped a changed user (`None`: all users) from its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub user: Option<UserId>,
    pub instance: u64,
}

impl Ack {
    /// As sent between instances: `"<user id or *> <instance>"`.
    pub fn encode(&self) -> String {
        match self.user {
            Some(user) => format!("{user} {}", self.instance),
            None => format!("* {}", self.instance),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (user, instance) = text.split_once(' ')?;
        let user = if user == "*" { None } else { Some(user.parse().ok()?) };
        Some(Self { user, instance: instance.parse().ok()? })
    }
}

/// Acknowledgements heard, taken by a writer before it writes.
pub type Acks = broadcast::Receiver<Ack>;

impl Default for Cache {
    fn default() -> Self {
        Self {
            users: NoticedMap::bounded(USERS),
            articles: NoticedMap::default(),
            tags: NoticedMap::default(),
            versioned_tags: NoticedMap::default(),
            instance: rand_instance(),
            acks: broadcast::channel(256).0,
        }
    }
}

/// Unique enough among the instances sharing one database.
fn rand_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

impl Cache {
    /// This process's name in acknowledgements.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    pub fn is_listening(&self) -> bool {
        self.users.is_listening()
    }

    /// The backend started (`true`) or stopped hearing about changes. Either way what is cached
    /// is dropped: changes made while nobody listened were not heard.
    pub fn set_listening(&self, listening: bool) {
        self.users.set_listening(listening);
        self.articles.set_listening(listening);
        self.tags.set_listening(listening);
        self.versioned_tags.set_listening(listening);
    }

    /// Anything may have changed: drops everything.
    pub fn anything_changed(&self) {
        self.user_changed(None);
        self.tags_changed();
    }

    /// An article changed (`None`: any article): drops its view and the tag list.
    pub fn article_changed(&self, slug: Option<&str>) {
        self.articles.invalidate(slug);
        self.tags_changed();
    }

    /// An article was created: its tags count.
    pub fn tags_changed(&self) {
        self.tags.invalidate(None::<&()>);
    }

    /// A user changed (`None`: any user may have), as a change notice from the backend or this
    /// process's own write says: drops the row, and every cached article, since they show their
    /// author's profile. After a notice the backend then acknowledges it to every instance.
    pub fn user_changed(&self, id: Option<UserId>) {
        self.users.invalidate(id.as_ref());
        self.articles.invalidate(None::<&str>);
    }

    /// An instance (maybe this one) acknowledged a change notice.
    pub fn acknowledged(&self, ack: Ack) {
        // Nobody waiting is fine.
        let _ = self.acks.send(ack);
    }

    /// Call before a write to the users table; pass the result to [`Cache::forget`].
    pub fn before_change(&self) -> Acks {
        self.acks.subscribe()
    }

    /// Call after a write to the users table committed, with the number of instances listening
    /// for changes. Drops the row here at once, then waits until that many instances (this one
    /// among them) have acknowledged dropping it, so the client's next request finds the change
    /// wherever it lands. An instance that does not answer within [`ACK_WAIT`] is given up on.
    pub async fn forget(&self, id: Option<UserId>, mut acks: Acks, instances: usize) {
        self.user_changed(id);
        if !self.is_listening() {
            return;
        }
        let mut answered = std::collections::HashSet::new();
        let all_answered = async {
            while answered.len() < instances {
                match acks.recv().await {
                    Ok(ack) if id.is_none() || ack.user.is_none() || ack.user == id => {
                        answered.insert(ack.instance);
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        if tokio::time::timeout(ACK_WAIT, all_answered).await.is_err() {
            tracing::warn!(user = ?id, instances, "not every instance acknowledged a user change within {ACK_WAIT:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn user(id: UserId, bio: &str) -> User {
        User {
            id,
            username: format!("user{id}"),
            email: format!("user{id}@example.com"),
            email_verified: false,
            bio: Some(bio.to_owned()),
            image: None,
            role: conduit_domain::model::Role::User,
            active: true,
            token_version: 0,
            ended_sessions: Vec::new(),
            grace_token: None,
            suspension: None,
            blocking: 0,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_user_change_drops_the_user_and_every_article() {
        let cache = Cache::default();
        cache.set_listening(true);
        cache.users.keep(cache.users.ticket(), UserId::new(1), user(UserId::new(1), "a"));
        cache.users.keep(cache.users.ticket(), UserId::new(2), user(UserId::new(2), "b"));
        cache.user_changed(Some(UserId::new(1)));
        assert!(cache.users.get(&UserId::new(1)).is_none());
        assert!(cache.users.get(&UserId::new(2)).is_some());
        cache.user_changed(None);
        assert!(cache.users.get(&UserId::new(2)).is_none());
    }

    #[tokio::test]
    async fn forget_returns_once_every_instance_acknowledged() {
        let cache = std::sync::Arc::new(Cache::default());
        cache.set_listening(true);
        let acks = cache.before_change();
        let (done_tx, mut done) = tokio::sync::oneshot::channel();
        let writer = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache.forget(Some(UserId::new(1)), acks, 2).await;
                done_tx.send(Instant::now()).unwrap();
            })
        };
        let started = Instant::now();
        // Another user's ack, and the same instance twice, do not count.
        cache.acknowledged(Ack { user: Some(UserId::new(2)), instance: 7 });
        cache.acknowledged(Ack { user: Some(UserId::new(1)), instance: 7 });
        cache.acknowledged(Ack { user: Some(UserId::new(1)), instance: 7 });
        tokio::task::yield_now().await;
        assert!(done.try_recv().is_err(), "forget returned before the second instance answered");
        cache.acknowledged(Ack { user: Some(UserId::new(1)), instance: 8 });
        writer.await.unwrap();
        assert!(done.try_recv().unwrap() - started < ACK_WAIT, "forget waited for the timeout");
    }

    #[test]
    fn acks_survive_their_encoding() {
        for ack in [Ack { user: Some(UserId::new(42)), instance: u64::MAX }, Ack { user: None, instance: 0 }] {
            assert_eq!(Ack::decode(&ack.encode()), Some(ack));
        }
        assert_eq!(Ack::decode("x 1"), None);
        assert_eq!(Ack::decode("1"), None);
    }
}
