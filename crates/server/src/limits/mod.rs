//! Rate limits: counters of attempts per account, client address and mail recipient, and the
//! bounded queue in front of password hashing ([`hash_queue`]). Logins, registrations and the
//! mailing endpoints (verification resend, reset, email change) each take places here before
//! they do any costly work.
//!
//! An attempt takes a place (a *reservation*) in each of its counters before any password is
//! hashed or checked, in one atomic step: when any counter is full, the attempt is refused with
//! 429 and `Retry-After`, so requests sent in parallel cannot all pass a check made before the
//! first of them was counted. A login with the right password gives back its places in the
//! counters of guesses; a wrong one keeps them. The per-address counter keeps every attempt,
//! right or wrong, since each costs a hash. Each counter is a sliding window (a list of attempt
//! times) of its own length.
//!
//! The counters live in Redis when it is configured (one Lua script per reservation, so every
//! instance shares them and no two instances can both take the last place), else in this
//! process's memory. While Redis is unreachable the memory counters stand in (logged), so each
//! instance still limits on its own rather than not at all.
//!
//! Which counters an attempt uses is [`login_limits`], [`hash_limits`], [`registration_limits`]
//! and [`mail_limits`]; the README's "Brute-force defence" section states the model.
//!
//! Imports: `config`, `error`, `ops` (Redis).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use conduit_domain::User;
use fred::prelude::*;

use crate::config::LimitSettings;
use crate::error::ApiError;
use crate::ops::clock::Clock;
use crate::ops::redis::Redis;

pub mod hash_queue;

/// How much more a counter over many addresses (or many accounts) allows than the one for a
/// single account from a single address.
pub const WIDE_FACTOR: u32 = 10;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// The longest email a login may name; longer ones are refused before they become a key.
pub const MAX_EMAIL_LEN: usize = 254;

/// One counter and what it allows: at most `allowance` attempts in any `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub key: String,
    pub allowance: u32,
    pub window: Duration,
    /// Whether [`RateLimiter::release`] gives the place back (a guess that turned out right);
    /// otherwise every attempt counts.
    pub returnable: bool,
}

impl Limit {
    /// What kind of counter this is (the key up to its first `:`), safe to log: the rest of
    /// the key may hold an email address.
    fn kind(&self) -> &str {
        self.key.split(':').next().unwrap_or_default()
    }
}

/// The client's network for counting: an IPv4 address, or an IPv6 client's /64 (one host
/// usually has a whole /64 to pick addresses from).
pub fn client_net(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The counters of one client network: the address (an IPv6 client's /64), and for IPv6 also
/// its /48 with [`WIDE_FACTOR`] times the allowance, so one site with a /48 (65,536 /64s)
/// cannot take more than ten networks' budgets.
fn per_network(kind: &str, ip: IpAddr, allowance: u32, window: Duration, returnable: bool) -> Vec<Limit> {
    let mut limits = vec![Limit { key: format!("{kind}:{}", client_net(ip)), allowance, window, returnable }];
    if let Some(site) = client_site(ip) {
        let allowance = allowance.saturating_mul(WIDE_FACTOR);
        limits.push(Limit { key: format!("{kind}:{site}"), allowance, window, returnable });
    }
    limits
}

/// An IPv6 client's /48 (a site's usual assignment); `None` for IPv4.
fn client_site(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
        _ => None,
    }
}

/// A login for `account` (a normalised email, at most [`MAX_EMAIL_LEN`] long) from `ip`: wrong
/// guesses up to the configured allowance per account and address, so a stranger at one
/// address cannot lock the owner out of another; ten times that per account over all
/// addresses, which bounds a botnet's guesses; and, right or wrong, ten times that per address
/// over all accounts ([`hash_limits`]), which bounds credential stuffing and hash floods.
pub fn login_limits(settings: &LimitSettings, account: &str, ip: IpAddr) -> Vec<Limit> {
    let net = client_net(ip);
    let allowance = settings.login_attempts_per_minute;
    let wide = allowance.saturating_mul(WIDE_FACTOR);
    let mut limits = vec![
        Limit { key: format!("login-pair:{net}:{account}"), allowance, window: MINUTE, returnable: true },
        Limit { key: format!("login-account:{account}"), allowance: wide, window: MINUTE, returnable: true },
    ];
    limits.extend(hash_limits(settings, ip));
    limits
}

/// Any password hash asked for from `ip` (a login, a new password): ten times the login
/// allowance per address each minute, right or wrong, so one address (with one valid account,
/// say) cannot keep the hashing queue full.
pub fn hash_limits(settings: &LimitSettings, ip: IpAddr) -> Vec<Limit> {
    let allowance = settings.login_attempts_per_minute.saturating_mul(WIDE_FACTOR);
    per_network("login-net", ip, allowance, MINUTE, false)
}

/// A registration from `ip`, successful or not (each one costs a password hash), and the
/// verification mail it sends to `email`, which counts against that recipient's mail like any
/// other mail on request ([`mail_limits`]).
pub fn registration_limits(settings: &LimitSettings, email: &str, ip: IpAddr) -> Vec<Limit> {
    let mut limits = per_network("register-net", ip, settings.registrations_per_hour, HOUR, false);
    limits.push(recipient_limit(settings, email));
    limits
}

/// A mail sent on request (a verification link, a reset link) to `recipient` (a normalised
/// address) for a client at `ip`: the configured number per recipient each hour, so nobody can
/// flood an inbox, and ten times that per client address over all recipients. Every request
/// counts, whether or not an account has the address, so the limit tells nothing either.
pub fn mail_limits(settings: &LimitSettings, recipient: &str, ip: IpAddr) -> Vec<Limit> {
    let mut limits = vec![recipient_limit(settings, recipient)];
    limits.extend(per_network("mail-net", ip, settings.mails_per_hour.saturating_mul(WIDE_FACTOR), HOUR, false));
    limits
}

fn recipient_limit(settings: &LimitSettings, recipient: &str) -> Limit {
    let key = format!("mail-to:{}", one_mailbox(recipient));
    Limit { key, allowance: settings.mails_per_hour, window: HOUR, returnable: false }
}

/// Redemptions of mailed tokens (verify, reset, undo) from one client address in a minute: a
/// wrong token keeps its place, a right one gives it back. As many as guesses at one account.
pub fn token_limits(settings: &LimitSettings, ip: IpAddr) -> Vec<Limit> {
    per_network("token-net", ip, settings.login_attempts_per_minute, MINUTE, true)
}

/// Exports (`GET /api/user/export`) streaming at once in one process; more are answered 503
/// with `Retry-After` at once. One export holds a page (up to 1 MiB of bodies, and one article
/// past it) two or three times over as it is read, written and sent; four hold a few tens of
/// megabytes at most, whoever asks.
pub const EXPORTS_AT_ONCE: usize = 4;

/// Searches running at once in one process: half the cores (at least one). The rest wait their
/// turn, up to [`SEARCH_WAIT`], then get a 503 with `Retry-After`. A search is bounded (it ranks
/// at most 500 matches, and walks at most `SEARCH_WINDOW` articles for a phrase), but its most
/// expensive shape still costs tens of milliseconds of database work where a page of a listing
/// costs a hundred microseconds: without a bound, 64 clients asking it take every core and every
/// database connection, and every other reader waits behind them.
pub fn searches_at_once() -> usize {
    (std::thread::available_parallelism().map_or(2, std::num::NonZero::get) / 2).max(1)
}

/// How long a search waits for its turn (see [`searches_at_once`]).
pub const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What one account may write or ask for: articles an hour, comments a minute, exports and
/// reports an hour. Every attempt that passed validation counts.
pub enum Posting {
    Article,
    Comment,
    Export,
    Report,
}

/// Whether `user` is still earning trust at `now`: younger than `CONDUIT_NEW_ACCOUNT_HOURS`,
/// or with an unverified address. Such accounts publish and comment under a second, tighter
/// counter ([`posting_limits`]).
pub fn is_new_account(settings: &LimitSettings, user: &User, now: DateTime<Utc>) -> bool {
    !user.email_verified || now - user.created_at < chrono::Duration::hours(i64::from(settings.new_account_hours))
}

/// Why a post by `user` at `now` waits for a moderator, if it does: a new account
/// ([`is_new_account`]) naming at least `CONDUIT_NEW_ACCOUNT_HOLD_LINKS` web addresses in
/// `texts` (a spammer's first posts are links). Moderators and admins are never held.
pub fn held_for_review(settings: &LimitSettings, user: &User, now: DateTime<Utc>, texts: &[&str]) -> Option<String> {
    let most = settings.new_account_hold_links;
    if most == 0 || user.moderates() || !is_new_account(settings, user, now) {
        return None;
    }
    let links: usize = texts.iter().map(|text| conduit_domain::markdown::web_addresses(text)).sum();
    (links >= most as usize).then(|| {
        format!("held for review: a new account's post with {links} links (CONDUIT_NEW_ACCOUNT_HOLD_LINKS is {most})")
    })
}

/// The counters of `posting` by `user`: one per account, and for articles and comments of a
/// new account ([`is_new_account`]) a tighter one beside it. Counted in Redis when it is
/// configured, so every instance shares them.
pub fn posting_limits(settings: &LimitSettings, posting: Posting, user: &User, now: DateTime<Utc>) -> Vec<Limit> {
    let account = user.id.get();
    let (kind, allowance, window) = match posting {
        Posting::Article => ("post-article", settings.articles_per_hour, HOUR),
        Posting::Comment => ("post-comment", settings.comments_per_minute, MINUTE),
        Posting::Export => ("export", settings.exports_per_hour, HOUR),
        Posting::Report => ("report", settings.reports_per_hour, HOUR),
    };
    let mut limits = vec![Limit { key: format!("{kind}:{account}"), allowance, window, returnable: false }];
    let earning = match posting {
        Posting::Article => Some(("new-article", settings.new_account_articles_per_hour())),
        Posting::Comment => Some(("new-comment", settings.new_account_comments_per_hour())),
        Posting::Export | Posting::Report => None,
    };
    if let Some((kind, allowance)) = earning.filter(|_| is_new_account(settings, user, now)) {
        limits.push(Limit { key: format!("{kind}:{account}"), allowance, window: HOUR, returnable: false });
    }
    limits
}

/// The mailbox an address reaches, as one recipient counter: `a+tag@x` and `a@x` are one
/// mailbox at most providers, and a Unicode domain is the same domain as its punycode (or a
/// variant that normalises to it). So `jake+1@example.com`, `JAKE@EXAMPLE.COM` and `jake@ｅxample.com`
/// share one counter.
fn one_mailbox(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else { return address.to_lowercase() };
    let local = local.split('+').next().unwrap_or(local).to_lowercase();
    let domain = url::Host::parse(domain).map_or_else(|_| domain.to_lowercase(), |host| host.to_string());
    format!("{local}@{domain}")
}

/// The places one attempt took; give them back with [`RateLimiter::release`].
#[derive(Debug)]
#[must_use = "a reservation is either kept (a failed attempt) or released"]
pub struct Reservation {
    /// Every counter it took a place in.
    keys: Vec<String>,
    /// The counters [`RateLimiter::release`] gives the place back to.
    returnable: Vec<String>,
    member: String,
    id: u64,
    /// Taken in Redis (else in this process's memory).
    in_redis: bool,
}

impl Reservation {
    /// The attempt counts: nothing to do but to say so.
    pub fn keep(self) {}
}

pub struct RateLimiter {
    redis: Option<Redis>,
    /// The counters in memory, in [`SHARDS`] maps by a hash of their key: a reservation locks
    /// only the shards of its own counters, and a map that grows rehashes a 256th of the
    /// counters (one map of three million counters stalled a reservation 0.5 s as it doubled).
    memory: Box<[Mutex<Memory>]>,
    /// Picks a counter's shard.
    shard_key: std::collections::hash_map::RandomState,
    /// The shard the next reservation also sweeps, whatever its own counters' shards are, so
    /// that a shard no reservation touches still forgets its idle counters.
    next_sweep: std::sync::atomic::AtomicUsize,
    /// The time of the counters in memory (those in Redis keep Redis's).
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Memory {
    counters: HashMap<String, Counter>,
    /// Per window length, the counters in the order of their attempts, each with the time that
    /// attempt leaves its window: the sweep's worklist, oldest first. Each reservation sweeps a
    /// few entries more than it adds, so forgetting idle counters costs every request a little
    /// and none a walk over a million of them.
    expiries: HashMap<u64, VecDeque<(u64, String)>>,
}

struct Counter {
    window_ms: u64,
    /// (time in ms, reservation id), oldest first.
    attempts: VecDeque<(u64, u64)>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How many maps the counters in memory are spread over (see [`RateLimiter`]).
const SHARDS: usize = 256;
/// Entries of another shard's worklist each reservation looks at in passing.
const PASSING_SWEEP: usize = 8;

/// Counter keys in Redis start with this, apart from anything else kept there.
const KEY_PREFIX: &str = "conduit:rl:";

/// Takes a place in every counter, or in none when any is full: returns 0, or else how many
/// milliseconds until the fullest one has a free place. Times are Redis's own clock, so
/// instances whose clocks disagree still share one window. KEYS: the counters (one Redis
/// server; a cluster would refuse keys of different slots). ARGV: the reservation's member,
/// then each counter's allowance and window (ms).
const RESERVE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
    local allowance = tonumber(ARGV[2 * i])
    local window = tonumber(ARGV[1 + 2 * i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= allowance then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        local free_at = (tonumber(oldest[2]) or now) + window - now
        if free_at > wait then wait = free_at end
    end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('PEXPIRE', key, tonumber(ARGV[1 + 2 * i]) + 1000)
end
return 0
";

/// Gives a reservation's places back. KEYS: the counters. ARGV: the member.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do redis.call('ZREM', key, ARGV[1]) end
return 0
";

impl RateLimiter {
    /// Counters in Redis when given (shared by every instance), else in memory.
    pub fn new(redis: Option<Redis>, clock: Arc<dyn Clock>) -> Self {
        let memory = (0..SHARDS).map(|_| Mutex::default()).collect();
        let (shard_key, next_sweep) = (std::collections::hash_map::RandomState::new(), Default::default());
        Self { redis, memory, shard_key, next_sweep, clock }
    }

    /// Takes a place in each of `limits`' counters, atomically: all of them, or none and a 429
    /// naming when to retry.
    pub async fn reserve(&self, limits: &[Limit]) -> Result<Reservation, ApiError> {
        let now = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let id = rand::random::<u64>();
        let stored = |l: &Limit| format!("{KEY_PREFIX}{}", l.key);
        let mut reservation = Reservation {
            keys: limits.iter().map(stored).collect(),
            returnable: limits.iter().filter(|l| l.returnable).map(stored).collect(),
            member: format!("{now}-{id:016x}"),
            id,
            in_redis: false,
        };
        let wait_ms = match &self.redis {
            Some(redis) => match self.reserve_in_redis(redis, limits, &reservation).await {
                Ok(wait) => {
                    reservation.in_redis = true;
                    wait
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit: Redis unreachable, counting in this instance's memory");
                    self.reserve_in_memory(limits, &reservation.keys, now, id)
                }
            },
            None => self.reserve_in_memory(limits, &reservation.keys, now, id),
        };
        if wait_ms == 0 {
            return Ok(reservation);
        }
        let counters: Vec<&str> = limits.iter().map(Limit::kind).collect();
        tracing::warn!(?counters, "rate limit reached");
        Err(ApiError::TooManyAttempts { retry_after: wait_ms.div_ceil(1000).max(1) })
    }

    /// Gives the places back: the attempt turned out not to count (the right password, or it
    /// was never evaluated). Counters that keep every attempt keep this one.
    pub async fn release(&self, reservation: Reservation) {
        if reservation.returnable.is_empty() {
            return;
        }
        if reservation.in_redis {
            if let Some(redis) = &self.redis {
                let released: Result<i64, fred::error::Error> =
                    redis.eval(RELEASE, reservation.returnable.clone(), vec![reservation.member.clone()]).await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "rate limit: cannot release a reservation in Redis");
                }
            }
            return;
        }
        for key in &reservation.returnable {
            let mut memory = self.lock(self.shard(key));
            if let Some(counter) = memory.counters.get_mut(key) {
                counter.attempts.retain(|(_, id)| *id != reservation.id);
            }
        }
    }

    fn shard(&self, key: &str) -> usize {
        use std::hash::BuildHasher;
        usize::try_from(self.shard_key.hash_one(key)).unwrap_or_default() % SHARDS
    }

    fn lock(&self, shard: usize) -> std::sync::MutexGuard<'_, Memory> {
        self.memory[shard].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn reserve_in_redis(
        &self,
        redis: &Redis,
        limits: &[Limit],
        reservation: &Reservation,
    ) -> Result<u64, fred::error::Error> {
        let mut args: Vec<String> = vec![reservation.member.clone()];
        for limit in limits {
            args.push(limit.allowance.to_string());
            args.push(millis(limit.window).to_string());
        }
        let wait: i64 = redis.eval(RESERVE, reservation.keys.clone(), args).await?;
        Ok(u64::try_from(wait).unwrap_or(0))
    }

    /// What [`RESERVE`] does, in memory, on `keys` (the limits' keys as stored). A refused
    /// attempt creates no counter: an attacker past one limit cannot grow the map with the keys
    /// of the others.
    fn reserve_in_memory(&self, limits: &[Limit], keys: &[String], now: u64, id: u64) -> u64 {
        // Every shard the counters live in, locked in one order (so two reservations cannot
        // each hold one the other waits for), for the whole check-then-take.
        let shard_of: Vec<usize> = keys.iter().map(|key| self.shard(key)).collect();
        let mut shards = shard_of.clone();
        shards.sort_unstable();
        shards.dedup();
        let mut locked: Vec<(usize, std::sync::MutexGuard<'_, Memory>)> =
            shards.iter().map(|&shard| (shard, self.lock(shard))).collect();
        for (_, memory) in &mut locked {
            memory.sweep(now, keys.len() + 1);
        }
        let passing = self.next_sweep.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
        if shards.binary_search(&passing).is_err()
            && let Ok(mut memory) = self.memory[passing].try_lock()
        {
            memory.sweep(now, PASSING_SWEEP);
        }
        // Each counter's place in `locked`.
        let held: Vec<usize> = shard_of
            .iter()
            .map(|shard| shards.binary_search(shard).expect("every counter's shard is locked"))
            .collect();
        let mut wait = 0;
        for ((limit, key), &at) in limits.iter().zip(keys).zip(&held) {
            let window_ms = millis(limit.window);
            let Some(counter) = locked[at].1.counters.get_mut(key) else { continue };
            while counter.attempts.front().is_some_and(|(t, _)| t + window_ms <= now) {
                counter.attempts.pop_front();
            }
            if counter.attempts.len() >= limit.allowance as usize {
                let oldest = counter.attempts.front().map_or(now, |(t, _)| *t);
                wait = wait.max((oldest + window_ms).saturating_sub(now).max(1));
            }
        }
        if wait == 0 {
            for ((limit, key), &at) in limits.iter().zip(keys).zip(&held) {
                let window_ms = millis(limit.window);
                let memory = &mut *locked[at].1;
                let counter = memory
                    .counters
                    .entry(key.clone())
                    .or_insert_with(|| Counter { window_ms, attempts: VecDeque::new() });
                counter.attempts.push_back((now, id));
                memory.expiries.entry(window_ms).or_default().push_back((now + window_ms, key.clone()));
            }
        }
        wait
    }

    /// Counters held in memory now (for tests and measurements).
    pub fn counters_in_memory(&self) -> usize {
        (0..SHARDS).map(|shard| self.lock(shard).counters.len()).sum()
    }
}

impl Memory {
    /// Looks at up to `step` of the oldest entries of each worklist whose attempt has left its
    /// window, and forgets their counter unless it has had a newer attempt since (which has an
    /// entry of its own further on).
    fn sweep(&mut self, now: u64, step: usize) {
        let Memory { counters, expiries } = self;
        for worklist in expiries.values_mut() {
            for _ in 0..step {
                match worklist.front() {
                    Some((expires, _)) if *expires <= now => {}
                    _ => break,
                }
                let Some((_, key)) = worklist.pop_front() else { break };
                let idle =
                    counters.get(&key).is_some_and(|c| c.attempts.back().is_none_or(|(t, _)| t + c.window_ms <= now));
                if idle {
                    counters.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_memory() -> RateLimiter {
        RateLimiter::new(None, Arc::new(crate::ops::clock::SystemClock))
    }

    fn limit(key: &str, allowance: u32) -> Limit {
        Limit { key: key.into(), allowance, window: MINUTE, returnable: true }
    }

    #[tokio::test]
    async fn a_full_counter_refuses_and_takes_no_place_in_the_others() {
        let limiter = in_memory();
        for _ in 0..2 {
            limiter.reserve(&[limit("a", 2), limit("b", 5)]).await.unwrap().keep();
        }
        assert!(matches!(
            limiter.reserve(&[limit("a", 2), limit("b", 5)]).await,
            Err(ApiError::TooManyAttempts { retry_after: 1..=60 })
        ));
        // b holds two attempts, not three: the refused one took no place there.
        for _ in 0..3 {
            limiter.reserve(&[limit("b", 5)]).await.unwrap().keep();
        }
        assert!(limiter.reserve(&[limit("b", 5)]).await.is_err());
    }

    #[tokio::test]
    async fn a_released_reservation_frees_its_places() {
        let limiter = in_memory();
        for _ in 0..10 {
            let reservation = limiter.reserve(&[limit("a", 1)]).await.unwrap();
            limiter.release(reservation).await;
        }
        limiter.reserve(&[limit("a", 1)]).await.unwrap().keep();
        assert!(limiter.reserve(&[limit("a", 1)]).await.is_err());
    }

    #[tokio::test]
    async fn a_release_leaves_the_counters_that_keep_every_attempt() {
        let limiter = in_memory();
        let kept = Limit { returnable: false, ..limit("hashes", 2) };
        for _ in 0..2 {
            let reservation = limiter.reserve(&[limit("guesses", 1), kept.clone()]).await.unwrap();
            limiter.release(reservation).await;
        }
        assert!(limiter.reserve(std::slice::from_ref(&kept)).await.is_err(), "both attempts still count there");
        limiter.reserve(&[limit("guesses", 1)]).await.unwrap().keep();
    }

    /// The window slides: an attempt frees its place a window after it was made, not before.
    #[tokio::test]
    async fn a_place_is_free_again_one_window_after_its_attempt() {
        let clock = Arc::new(crate::ops::clock::ManualClock::default());
        let limiter = RateLimiter::new(None, clock.clone());
        limiter.reserve(&[limit("a", 2)]).await.unwrap().keep();
        clock.advance(Duration::from_secs(30));
        limiter.reserve(&[limit("a", 2)]).await.unwrap().keep();
        clock.advance(Duration::from_millis(29_999));
        assert!(
            matches!(limiter.reserve(&[limit("a", 2)]).await, Err(ApiError::TooManyAttempts { retry_after: 1 })),
            "a millisecond before the first attempt's window ends, both still count"
        );
        clock.advance(Duration::from_millis(1));
        limiter.reserve(&[limit("a", 2)]).await.unwrap().keep();
        assert!(limiter.reserve(&[limit("a", 2)]).await.is_err(), "the second and third fill it again");
        clock.advance(Duration::from_secs(30));
        limiter.reserve(&[limit("a", 2)]).await.unwrap().keep();
    }

    /// An address past its budget asks for logins to a million accounts: before, each refused
    /// attempt left two empty counters behind (its pair and its account).
    #[tokio::test]
    async fn a_refused_attempt_creates_no_counter() {
        let limiter = in_memory();
        let net = Limit { returnable: false, ..limit("net", 1) };
        limiter.reserve(std::slice::from_ref(&net)).await.unwrap().keep();
        for i in 0..1000 {
            let refused = limiter.reserve(&[limit(&format!("pair:{i}"), 5), net.clone()]).await;
            assert!(refused.is_err());
        }
        assert_eq!(limiter.counters_in_memory(), 1);
    }

    /// Idle counters are forgotten a few at a time by the reservations that follow, never in
    /// one walk over all of them (which, at a million addresses, held every request behind one
    /// lock for the walk).
    #[tokio::test]
    async fn idle_counters_are_forgotten_a_few_per_reservation() {
        let clock = Arc::new(crate::ops::clock::ManualClock::default());
        let limiter = RateLimiter::new(None, clock.clone());
        for i in 0..20_000 {
            limiter.reserve(&[limit(&format!("a:{i}"), 1)]).await.unwrap().keep();
        }
        assert_eq!(limiter.counters_in_memory(), 20_000);
        clock.advance(Duration::from_secs(61));
        limiter.reserve(&[limit("b", 100_000)]).await.unwrap().keep();
        let mut before = limiter.counters_in_memory();
        assert!(before >= 20_000 - 9, "one reservation forgot {} counters", 20_001 - before);
        for _ in 0..100 {
            limiter.reserve(&[limit("b", 100_000)]).await.unwrap().keep();
            let after = limiter.counters_in_memory();
            // Two of its own shard's worklist, and eight of the shard it passes.
            assert!(before - after <= 10, "one reservation forgot {} counters", before - after);
            before = after;
        }
        for _ in 0..10_000 {
            limiter.reserve(&[limit("b", 100_000)]).await.unwrap().keep();
        }
        assert_eq!(limiter.counters_in_memory(), 1, "every idle counter forgotten, the busy one kept");
    }

    /// One IPv6 site (a /48 holds 65,536 /64s) gets ten networks' budgets, not 65,536.
    #[tokio::test]
    async fn an_ipv6_site_shares_ten_budgets() {
        let limiter = in_memory();
        let from = |net: u16| -> IpAddr { format!("2001:db8:7:{net:x}::1").parse().unwrap() };
        for net in 0..10 {
            limiter.reserve(&per_network("t", from(net), 1, MINUTE, false)).await.unwrap().keep();
        }
        assert!(limiter.reserve(&per_network("t", from(10), 1, MINUTE, false)).await.is_err(), "an 11th /64");
        let elsewhere: IpAddr = "2001:db8:8::1".parse().unwrap();
        limiter.reserve(&per_network("t", elsewhere, 1, MINUTE, false)).await.unwrap().keep();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(per_network("t", v4, 1, MINUTE, false).len(), 1, "IPv4 has no site counter");
    }

    #[test]
    fn tagged_and_unicode_variants_of_an_address_are_one_recipient() {
        let one = one_mailbox("jake@example.com");
        for variant in ["jake+1@example.com", "JAKE@Example.COM", "jake+x+y@EXAMPLE.com", "jake@ｅxample.com"] {
            assert_eq!(one_mailbox(variant), one, "{variant}");
        }
        assert_eq!(one_mailbox("jake@bücher.example"), one_mailbox("jake@xn--bcher-kva.example"));
        assert_ne!(one_mailbox("jake@example.com"), one_mailbox("anna@example.com"));
        assert_ne!(one_mailbox("jake@example.com"), one_mailbox("jake@example.org"));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let net = |s: &str| client_net(s.parse().unwrap());
        assert_eq!(net("2001:db8:1:2:aaaa::1"), net("2001:db8:1:2:bbbb::9"));
        assert_ne!(net("2001:db8:1:2::1"), net("2001:db8:1:3::1"));
        assert_eq!(net("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
    }
}
