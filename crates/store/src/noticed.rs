//! A map kept in memory only while the backend hears about every change to what it holds.
//!
//! Until the backend says it is listening ([`NoticedMap::set_listening`]), the map is bypassed,
//! and losing the listener empties it: changes made while nobody listened were not heard.
//!
//! A read that raced a change must not put the old value back: every change bumps an epoch,
//! and a value read from the database is kept only if no change was heard since the read
//! began ([`NoticedMap::ticket`], [`NoticedMap::keep`]).
//!
//! A change to anything (SQLite's commit watch says only that something was committed) drops
//! every value at once by moving to a new generation, not by emptying the map: a value kept
//! in an older one is never returned, and is overwritten or goes when the map starts again.
//! Emptying a map of 10,000 users (one per open notification stream) on every commit was the
//! largest part of what the streams added to a write (BENCHMARKS.md, "Notifications").

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// A value is read again after this long even if no change was heard: a bound on staleness
/// should the notices stop silently (a connection cut without a reset).
const MAX_AGE: Duration = Duration::from_secs(5);
/// More entries than this are not kept, unless the map is made with another bound
/// ([`NoticedMap::bounded`]); the map starts again empty.
const MAX_ENTRIES: usize = 10_000;

pub struct NoticedMap<K, V> {
    state: RwLock<State<K, V>>,
    listening: AtomicBool,
    max_entries: usize,
}

struct State<K, V> {
    /// Each value with when it was read and the generation it was kept in.
    entries: HashMap<K, (Instant, u64, V)>,
    /// Bumped by every change heard or made.
    epoch: u64,
    /// Bumped by a change to anything: values of an earlier generation are gone.
    generation: u64,
}

/// Taken before reading from the database; see [`NoticedMap::keep`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<K, V> Default for NoticedMap<K, V> {
    fn default() -> Self {
        Self::bounded(MAX_ENTRIES)
    }
}

impl<K, V> NoticedMap<K, V> {
    /// A map that keeps at most `max_entries` values.
    pub fn bounded(max_entries: usize) -> Self {
        Self {
            state: RwLock::new(State { entries: HashMap::new(), epoch: 0, generation: 0 }),
            listening: AtomicBool::new(false),
            max_entries,
        }
    }
}

impl<K: Eq + Hash, V: Clone> NoticedMap<K, V> {
    fn read(&self) -> RwLockReadGuard<'_, State<K, V>> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<K, V>> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The backend started (`true`) or stopped hearing about changes. Either way what is kept
    /// is dropped.
    pub fn set_listening(&self, listening: bool) {
        let mut state = self.write();
        self.listening.store(listening, Ordering::Release);
        state.epoch += 1;
        state.entries.clear();
    }

    /// The kept value, if the map is in use and the value is recent.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if !self.is_listening() {
            return None;
        }
        let state = self.read();
        let (at, generation, value) = state.entries.get(key)?;
        (*generation == state.generation && at.elapsed() < MAX_AGE).then(|| value.clone())
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.read().epoch)
    }

    /// Keeps a value read from the database after `ticket` was taken, unless a change was heard
    /// since (the value may predate it).
    pub fn keep(&self, ticket: Ticket, key: K, value: V) {
        if !self.is_listening() {
            return;
        }
        let mut state = self.write();
        if state.epoch != ticket.0 || !self.is_listening() {
            return;
        }
        if state.entries.len() >= self.max_entries {
            state.entries.clear();
        }
        let generation = state.generation;
        state.entries.insert(key, (Instant::now(), generation, value));
    }

    /// The kept value for `key`, or else what `read` (a database read not yet started) finds,
    /// kept unless a change was heard while it ran. The one way to fill the map from a read.
    pub async fn get_or_read<Q, E>(
        &self,
        key: &Q,
        read: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<V>, E>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
    {
        self.get_or_read_keeping(key, read, |_| true).await
    }

    /// [`NoticedMap::get_or_read`], keeping only a value `worth_keeping` says to.
    pub async fn get_or_read_keeping<Q, E>(
        &self,
        key: &Q,
        read: impl std::future::Future<Output = Result<Option<V>, E>>,
        worth_keeping: impl FnOnce(&V) -> bool,
    ) -> Result<Option<V>, E>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        let ticket = self.ticket();
        let value = read.await?;
        if let Some(value) = value.as_ref().filter(|v| worth_keeping(v)) {
            self.keep(ticket, key.to_owned(), value.clone());
        }
        Ok(value)
    }

    /// A change was made or heard of (`None`: to anything): drops what it may have changed, and
    /// bumps the epoch so no read that began before it is kept.
    pub fn invalidate<Q>(&self, key: Option<&Q>)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut state = self.write();
        state.epoch += 1;
        match key {
            Some(key) => {
                state.entries.remove(key);
            }
            None => state.generation += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_kept_until_the_backend_listens() {
        let map = NoticedMap::<u32, &str>::default();
        map.keep(map.ticket(), 1, "a");
        assert!(map.get(&1).is_none());
        map.set_listening(true);
        map.keep(map.ticket(), 1, "a");
        assert_eq!(map.get(&1), Some("a"));
        map.set_listening(false);
        assert!(map.get(&1).is_none(), "a lost listener must empty and bypass the map");
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let map = NoticedMap::<u32, &str>::default();
        map.set_listening(true);
        let ticket = map.ticket();
        // The value was read, then a change was heard before it could be kept.
        map.invalidate(Some(&1));
        map.keep(ticket, 1, "old");
        assert!(map.get(&1).is_none());
        map.keep(map.ticket(), 1, "new");
        assert_eq!(map.get(&1), Some("new"));
    }

    #[tokio::test]
    async fn get_or_read_keeps_nothing_a_change_overtook() {
        let map = NoticedMap::<u32, &str>::default();
        map.set_listening(true);
        // The change is heard while the read runs: its answer is returned but not kept.
        let read = async {
            map.invalidate(Some(&1));
            Ok::<_, ()>(Some("old"))
        };
        assert_eq!(map.get_or_read(&1, read).await, Ok(Some("old")));
        assert!(map.get(&1).is_none());
        assert_eq!(map.get_or_read(&1, async { Ok::<_, ()>(Some("new")) }).await, Ok(Some("new")));
        assert_eq!(map.get_or_read(&1, async { Ok::<_, ()>(Some("unread")) }).await, Ok(Some("new")));
    }

    #[test]
    fn a_change_to_anything_drops_every_value_and_a_new_one_is_kept() {
        let map = NoticedMap::<u32, &str>::default();
        map.set_listening(true);
        map.keep(map.ticket(), 1, "a");
        map.keep(map.ticket(), 2, "b");
        map.invalidate(None::<&u32>);
        assert!(map.get(&1).is_none() && map.get(&2).is_none());
        map.keep(map.ticket(), 1, "a2");
        assert_eq!(map.get(&1), Some("a2"));
        assert!(map.get(&2).is_none(), "a value of an earlier generation must stay gone");
    }

    #[test]
    fn a_change_notice_drops_only_its_key() {
        let map = NoticedMap::<String, u32>::default();
        map.set_listening(true);
        map.keep(map.ticket(), "a".to_owned(), 1);
        map.keep(map.ticket(), "b".to_owned(), 2);
        map.invalidate(Some("a"));
        assert!(map.get("a").is_none());
        assert_eq!(map.get("b"), Some(2));
        map.invalidate(None::<&str>);
        assert!(map.get("b").is_none());
    }
}
