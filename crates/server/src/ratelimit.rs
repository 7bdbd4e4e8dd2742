//! Brute-force defence for logins and registration: failed attempts are counted per client
//! address and per account over a rolling minute; past the limit, 429 with `Retry-After`.
//!
//! With Redis configured the counters live there (a sorted set of attempt times per key), so
//! every instance shares them; otherwise in this process's memory. If Redis is unreachable the
//! check lets the attempt through (logged): an outage of the counter store must not lock
//! everyone out of logging in.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use fred::prelude::*;

use crate::error::ApiError;
use crate::redis::Redis;

const WINDOW_MS: u64 = 60_000;

pub struct RateLimiter {
    limit: u32,
    counters: Counters,
}

enum Counters {
    /// Failure times (ms) per key, oldest first.
    Memory(Mutex<HashMap<String, VecDeque<u64>>>),
    Redis(Redis),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl RateLimiter {
    /// At most `limit` failures per key in any minute.
    pub fn new(limit: u32, redis: Option<Redis>) -> Self {
        let counters = match redis {
            Some(redis) => Counters::Redis(redis),
            None => Counters::Memory(Mutex::default()),
        };
        Self { limit, counters }
    }

    /// 429 when any of `keys` has used up its attempts in the last minute.
    pub async fn check(&self, keys: &[String]) -> Result<(), ApiError> {
        let now = now_ms();
        for key in keys {
            let (count, oldest) = self.recent(key, now).await;
            if count >= self.limit as usize {
                let retry_after = (oldest + WINDOW_MS).saturating_sub(now).div_ceil(1000).max(1);
                tracing::warn!(key, "rate limit reached");
                return Err(ApiError::TooManyAttempts { retry_after });
            }
        }
        Ok(())
    }

    /// Counts one failed attempt against each of `keys`.
    pub async fn record_failure(&self, keys: &[String]) {
        let now = now_ms();
        for key in keys {
            match &self.counters {
                Counters::Memory(map) => {
                    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    // Forget idle keys now and then, so the map cannot grow without end.
                    if map.len() > 10_000 {
                        map.retain(|_, times| times.back().is_some_and(|t| now - t < WINDOW_MS));
                    }
                    let times = map.entry(key.clone()).or_default();
                    times.push_back(now);
                    while times.len() > self.limit as usize + 1 {
                        times.pop_front();
                    }
                }
                Counters::Redis(redis) => {
                    let redis_key = format!("conduit:rl:{key}");
                    let member = format!("{now}-{:08x}", rand::random::<u32>());
                    let counted: Result<(), fred::error::Error> = async {
                        let _: i64 = redis.zadd(&redis_key, None, None, false, false, (now as f64, member)).await?;
                        let _: i64 = redis.pexpire(&redis_key, WINDOW_MS as i64 + 1000, None).await?;
                        Ok(())
                    }
                    .await;
                    if let Err(e) = counted {
                        tracing::warn!(error = %e, "rate limit: cannot count in Redis");
                    }
                }
            }
        }
    }

    /// Failures of `key` within the window, and when the oldest of them happened.
    async fn recent(&self, key: &str, now: u64) -> (usize, u64) {
        let since = now.saturating_sub(WINDOW_MS);
        match &self.counters {
            Counters::Memory(map) => {
                let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let times = map.get(key).map(|t| t.iter().copied().filter(|t| *t > since).collect::<Vec<_>>());
                let times = times.unwrap_or_default();
                (times.len(), times.first().copied().unwrap_or(now))
            }
            Counters::Redis(redis) => {
                let redis_key = format!("conduit:rl:{key}");
                let recent: Result<(usize, u64), fred::error::Error> = async {
                    let _: i64 = redis.zremrangebyscore(&redis_key, f64::NEG_INFINITY, since as f64).await?;
                    let oldest: Vec<(String, f64)> = redis.zrange(&redis_key, 0, 0, None, false, None, true).await?;
                    let count: usize = redis.zcount(&redis_key, since as f64, f64::INFINITY).await?;
                    Ok((count, oldest.first().map_or(now, |(_, t)| *t as u64)))
                }
                .await;
                recent.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "rate limit: Redis unreachable, not limiting");
                    (0, now)
                })
            }
        }
    }
}
