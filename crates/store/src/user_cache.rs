//! Users by id, kept in memory for authentication, which loads the caller on every request.
//!
//! A cached user may be served only while the backend hears about every change to the users
//! table, from any process (PostgreSQL: a trigger's `NOTIFY`, see store-postgres). Until the
//! backend says it is listening ([`UserCache::set_listening`]), the cache is bypassed; SQLite
//! never says so, because another process (`conduit user ...`) can change its file unheard.
//!
//! A read that raced a change must not put the old row back: every change bumps an epoch, and
//! a row read from the database is kept only if no change was heard since the read began.
//!
//! Revocation must take effect at once on every instance, not merely soon: so each instance
//! acknowledges every change notice once it has dropped the row, and the instance that made the
//! change waits for all of them ([`UserCache::forget`]) before it answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use conduit_domain::User;
use conduit_domain::model::UserId;
use tokio::sync::broadcast;

/// A cached row is reloaded after this long even if no change was heard: a bound on staleness
/// should the notifications stop silently (a connection cut without a reset).
const MAX_AGE: Duration = Duration::from_secs(5);
/// More users than this are not kept; the cache starts again empty.
const MAX_ENTRIES: usize = 10_000;
/// How long a writer waits for the other instances' acknowledgements (see [`UserCache::forget`]).
const ACK_WAIT: Duration = Duration::from_secs(1);

pub struct UserCache {
    state: RwLock<State>,
    listening: AtomicBool,
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

#[derive(Default)]
struct State {
    entries: HashMap<UserId, (Instant, User)>,
    /// Bumped by every change heard or made.
    epoch: u64,
}

/// Acknowledgements heard, taken by a writer before it writes.
pub type Acks = broadcast::Receiver<Ack>;

/// Taken before reading a user from the database; see [`UserCache::keep`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl Default for UserCache {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            listening: AtomicBool::new(false),
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

impl UserCache {
    /// This process's name in acknowledgements.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The backend started (`true`) or stopped hearing about changes. Either way what is cached
    /// is dropped: changes made while nobody listened were not heard.
    pub fn set_listening(&self, listening: bool) {
        let mut state = self.write();
        self.listening.store(listening, Ordering::Release);
        state.epoch += 1;
        state.entries.clear();
    }

    /// The cached user, if the cache is in use and the row is recent.
    pub fn get(&self, id: UserId) -> Option<User> {
        if !self.is_listening() {
            return None;
        }
        let state = self.read();
        state.entries.get(&id).filter(|(at, _)| at.elapsed() < MAX_AGE).map(|(_, user)| user.clone())
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.read().epoch)
    }

    /// Caches a user read from the database after `ticket` was taken, unless a change was heard
    /// since (the row may predate it).
    pub fn keep(&self, ticket: Ticket, user: &User) {
        if !self.is_listening() {
            return;
        }
        let mut state = self.write();
        if state.epoch != ticket.0 || !self.is_listening() {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(user.id, (Instant::now(), user.clone()));
    }

    /// A change notice from the backend (`None`: any user may have changed): drops the row.
    /// The backend then acknowledges it to every instance.
    pub fn heard(&self, id: Option<UserId>) {
        let mut state = self.write();
        state.epoch += 1;
        match id {
            Some(id) => {
                state.entries.remove(&id);
            }
            None => state.entries.clear(),
        }
    }

    /// An instance (maybe this one) acknowledged a change notice.
    pub fn acknowledged(&self, ack: Ack) {
        // Nobody waiting is fine.
        let _ = self.acks.send(ack);
    }

    /// Call before a write to the users table; pass the result to [`UserCache::forget`].
    pub fn before_change(&self) -> Acks {
        self.acks.subscribe()
    }

    /// Call after a write to the users table committed, with the number of instances listening
    /// for changes. Drops the row here at once, then waits until that many instances (this one
    /// among them) have acknowledged dropping it, so the client's next request finds the change
    /// wherever it lands. An instance that does not answer within [`ACK_WAIT`] is given up on.
    pub async fn forget(&self, id: Option<UserId>, mut acks: Acks, instances: usize) {
        self.heard(id);
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
    use super::*;

    fn user(id: UserId, bio: &str) -> User {
        User {
            id,
            username: format!("user{id}"),
            email: format!("user{id}@example.com"),
            bio: Some(bio.to_owned()),
            image: None,
            role: conduit_domain::model::Role::User,
            active: true,
            token_version: 0,
            grace_token_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn nothing_is_cached_until_the_backend_listens() {
        let cache = UserCache::default();
        cache.keep(cache.ticket(), &user(1, "a"));
        assert!(cache.get(1).is_none());
        cache.set_listening(true);
        cache.keep(cache.ticket(), &user(1, "a"));
        assert_eq!(cache.get(1).unwrap().bio.as_deref(), Some("a"));
        cache.set_listening(false);
        assert!(cache.get(1).is_none(), "a lost listener must drop and bypass the cache");
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = UserCache::default();
        cache.set_listening(true);
        let ticket = cache.ticket();
        // The row was read, then a change was heard before it could be cached.
        cache.heard(Some(1));
        cache.keep(ticket, &user(1, "old"));
        assert!(cache.get(1).is_none());
        cache.keep(cache.ticket(), &user(1, "new"));
        assert_eq!(cache.get(1).unwrap().bio.as_deref(), Some("new"));
    }

    #[test]
    fn a_change_notice_drops_only_its_user() {
        let cache = UserCache::default();
        cache.set_listening(true);
        cache.keep(cache.ticket(), &user(1, "a"));
        cache.keep(cache.ticket(), &user(2, "b"));
        cache.heard(Some(1));
        assert!(cache.get(1).is_none());
        assert!(cache.get(2).is_some());
        cache.heard(None);
        assert!(cache.get(2).is_none());
    }

    #[tokio::test]
    async fn forget_returns_once_every_instance_acknowledged() {
        let cache = std::sync::Arc::new(UserCache::default());
        cache.set_listening(true);
        let acks = cache.before_change();
        let (done_tx, mut done) = tokio::sync::oneshot::channel();
        let writer = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache.forget(Some(1), acks, 2).await;
                done_tx.send(Instant::now()).unwrap();
            })
        };
        let started = Instant::now();
        // Another user's ack, and the same instance twice, do not count.
        cache.acknowledged(Ack { user: Some(2), instance: 7 });
        cache.acknowledged(Ack { user: Some(1), instance: 7 });
        cache.acknowledged(Ack { user: Some(1), instance: 7 });
        tokio::task::yield_now().await;
        assert!(done.try_recv().is_err(), "forget returned before the second instance answered");
        cache.acknowledged(Ack { user: Some(1), instance: 8 });
        writer.await.unwrap();
        assert!(done.try_recv().unwrap() - started < ACK_WAIT, "forget waited for the timeout");
    }

    #[test]
    fn acks_survive_their_encoding() {
        for ack in [Ack { user: Some(42), instance: u64::MAX }, Ack { user: None, instance: 0 }] {
            assert_eq!(Ack::decode(&ack.encode()), Some(ack));
        }
        assert_eq!(Ack::decode("x 1"), None);
        assert_eq!(Ack::decode("1"), None);
    }
}
