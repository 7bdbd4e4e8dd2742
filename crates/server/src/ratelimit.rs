//! Brute-force and flood defence for logins and registration.
//!
//! An attempt takes a place (a *reservation*) in each of its counters before any password is
//! hashed or checked, in one atomic step: when any counter is full, the attempt is refused with
//! 429 and `Retry-After`, so requests sent in parallel cannot all pass a check made before the
//! first of them was counted. A login with the right password gives its places back; a wrong
//! one keeps them. Each counter is a sliding window (a list of attempt times) of its own length.
//!
//! The counters live in Redis when it is configured (one Lua script per reservation, so every
//! instance shares them and no two instances can both take the last place), else in this
//! process's memory. While Redis is unreachable the memory counters stand in (logged), so each
//! instance still limits on its own rather than not at all.
//!
//! Which counters an attempt uses is [`login_limits`] and [`registration_limits`]; the README's
//! "Brute-force defence" section states the model.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::prelude::*;

use crate::error::ApiError;
use crate::layers::HttpSettings;
use crate::redis::Redis;

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

/// A login for `account` (a normalised email, at most [`MAX_EMAIL_LEN`] long) from `ip`: the
/// configured allowance per account and address, so a stranger elsewhere cannot lock the owner
/// out; ten times that per account over all addresses, which bounds a botnet's guesses; and ten
/// times that per address over all accounts, which bounds credential stuffing.
pub fn login_limits(settings: &HttpSettings, account: &str, ip: IpAddr) -> [Limit; 3] {
    let net = client_net(ip);
    let allowance = settings.login_attempts_per_minute;
    let wide = allowance.saturating_mul(WIDE_FACTOR);
    [
        Limit { key: format!("login-pair:{net}:{account}"), allowance, window: MINUTE },
        Limit { key: format!("login-account:{account}"), allowance: wide, window: MINUTE },
        Limit { key: format!("login-net:{net}"), allowance: wide, window: MINUTE },
    ]
}

/// A registration from `ip`, successful or not: each one costs a password hash.
pub fn registration_limits(settings: &HttpSettings, ip: IpAddr) -> [Limit; 1] {
    [Limit {
        key: format!("register-net:{}", client_net(ip)),
        allowance: settings.registrations_per_hour,
        window: HOUR,
    }]
}

/// The places one attempt took; give them back with [`RateLimiter::release`].
#[derive(Debug)]
#[must_use = "a reservation is either kept (a failed attempt) or released"]
pub struct Reservation {
    keys: Vec<String>,
    member: String,
    id: u64,
}

impl Reservation {
    /// The attempt counts: nothing to do but to say so.
    pub fn keep(self) {}
}

pub struct RateLimiter {
    redis: Option<Redis>,
    memory: Mutex<Memory>,
}

#[derive(Default)]
struct Memory {
    counters: HashMap<String, Counter>,
    last_sweep: u64,
}

struct Counter {
    window_ms: u64,
    /// (time in ms, reservation id), oldest first.
    attempts: VecDeque<(u64, u64)>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Takes a place in every counter, or in none when any is full: returns 0, or else how many
/// milliseconds until the fullest one has a free place. KEYS: the counters. ARGV: now (ms), the
/// reservation's member, then each counter's allowance and window (ms).
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
    local allowance = tonumber(ARGV[1 + 2 * i])
    local window = tonumber(ARGV[2 + 2 * i])
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= allowance then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        local free_at = (tonumber(oldest[2]) or now) + window - now
        if free_at > wait then wait = free_at end
    end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]) + 1000)
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
    pub fn new(redis: Option<Redis>) -> Self {
        Self { redis, memory: Mutex::default() }
    }

    /// Takes a place in each of `limits`' counters, atomically: all of them, or none and a 429
    /// naming when to retry.
    pub async fn reserve(&self, limits: &[Limit]) -> Result<Reservation, ApiError> {
        let now = now_ms();
        let id = rand::random::<u64>();
        let reservation = Reservation {
            keys: limits.iter().map(|l| l.key.clone()).collect(),
            member: format!("{now}-{id:016x}"),
            id,
        };
        let wait_ms = match &self.redis {
            Some(redis) => match self.reserve_in_redis(redis, limits, now, &reservation).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit: Redis unreachable, counting in this instance's memory");
                    self.reserve_in_memory(limits, now, id)
                }
            },
            None => self.reserve_in_memory(limits, now, id),
        };
        if wait_ms == 0 {
            return Ok(reservation);
        }
        let full: Vec<&str> = limits.iter().map(Limit::kind).collect();
        tracing::warn!(counters = ?full, "rate limit reached");
        Err(ApiError::TooManyAttempts { retry_after: wait_ms.div_ceil(1000).max(1) })
    }

    /// Gives the places back: the attempt turned out not to count (the right password, or it
    /// was never evaluated).
    pub async fn release(&self, reservation: Reservation) {
        if let Some(redis) = &self.redis {
            let released: Result<i64, fred::error::Error> =
                redis.eval(RELEASE, reservation.keys.clone(), vec![reservation.member.clone()]).await;
            if let Err(e) = released {
                tracing::warn!(error = %e, "rate limit: cannot release a reservation in Redis");
            }
        }
        // Also here: the reservation may have been taken in memory while Redis was away.
        let mut memory = self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for key in &reservation.keys {
            if let Some(counter) = memory.counters.get_mut(key) {
                counter.attempts.retain(|(_, id)| *id != reservation.id);
            }
        }
    }

    async fn reserve_in_redis(
        &self,
        redis: &Redis,
        limits: &[Limit],
        now: u64,
        reservation: &Reservation,
    ) -> Result<u64, fred::error::Error> {
        let mut args: Vec<String> = vec![now.to_string(), reservation.member.clone()];
        for limit in limits {
            args.push(limit.allowance.to_string());
            args.push(millis(limit.window).to_string());
        }
        let wait: i64 = redis.eval(RESERVE, reservation.keys.clone(), args).await?;
        Ok(u64::try_from(wait).unwrap_or(0))
    }

    fn reserve_in_memory(&self, limits: &[Limit], now: u64, id: u64) -> u64 {
        let mut memory = self.memory.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget idle counters now and then, so the map cannot grow without end.
        if memory.counters.len() > 10_000 && now.saturating_sub(memory.last_sweep) > 1000 {
            memory.counters.retain(|_, c| c.attempts.back().is_some_and(|(t, _)| now < t + c.window_ms));
            memory.last_sweep = now;
        }
        let mut wait = 0;
        for limit in limits {
            let window_ms = millis(limit.window);
            let counter = memory
                .counters
                .entry(limit.key.clone())
                .or_insert_with(|| Counter { window_ms, attempts: VecDeque::new() });
            while counter.attempts.front().is_some_and(|(t, _)| t + window_ms <= now) {
                counter.attempts.pop_front();
            }
            if counter.attempts.len() >= limit.allowance as usize {
                let oldest = counter.attempts.front().map_or(now, |(t, _)| *t);
                wait = wait.max((oldest + window_ms).saturating_sub(now).max(1));
            }
        }
        if wait == 0 {
            for limit in limits {
                if let Some(counter) = memory.counters.get_mut(&limit.key) {
                    counter.attempts.push_back((now, id));
                }
            }
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(key: &str, allowance: u32) -> Limit {
        Limit { key: key.into(), allowance, window: MINUTE }
    }

    #[tokio::test]
    async fn a_full_counter_refuses_and_takes_no_place_in_the_others() {
        let limiter = RateLimiter::new(None);
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
        let limiter = RateLimiter::new(None);
        for _ in 0..10 {
            let reservation = limiter.reserve(&[limit("a", 1)]).await.unwrap();
            limiter.release(reservation).await;
        }
        limiter.reserve(&[limit("a", 1)]).await.unwrap().keep();
        assert!(limiter.reserve(&[limit("a", 1)]).await.is_err());
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
