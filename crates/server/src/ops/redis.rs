//! The Redis connection, when `REDIS_URL` is set: shared sessions and rate-limit counters.
//!
//! Commands fail within a second while Redis is away instead of queueing, and the client keeps
//! reconnecting in the background, so service resumes without a restart when Redis is back.

use std::time::Duration;

use anyhow::Context;
use fred::prelude::*;

pub type Redis = fred::clients::Pool;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// How long start-up waits for Redis. Five seconds once ran out in the test suite on a loaded
/// machine (a local Redis, answering PING) while each attempt's handshake waited on it; a Redis
/// that is really gone is still reported within this.
const START_PATIENCE: Duration = Duration::from_secs(15);

/// Connects, failing start-up within [`START_PATIENCE`] when Redis cannot be reached.
pub async fn connect(url: &str) -> anyhow::Result<Redis> {
    let config =
        Config::from_url(url).with_context(|| format!("invalid REDIS_URL '{}'", crate::ops::database::redact(url)))?;
    let pool = Builder::from_config(config)
        .with_performance_config(|p| p.default_command_timeout = COMMAND_TIMEOUT)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(2);
            c.internal_command_timeout = COMMAND_TIMEOUT;
            // A command interrupted by a dropped connection fails rather than waiting for the
            // reconnection: callers answer 503 (sessions) or go on without Redis (rate limits).
            c.max_command_attempts = 1;
        })
        // Forever, every 250 ms: Redis coming back is picked up within a fraction of a second.
        .set_policy(ReconnectPolicy::new_constant(0, 250))
        .build_pool(4)
        .context("cannot set up the Redis client")?;
    // Connections are made (and remade) by background tasks; wait for the first ones.
    let _tasks = pool.connect();
    tokio::time::timeout(START_PATIENCE, pool.wait_for_connect())
        .await
        .map_err(|_| anyhow::anyhow!("cannot connect to Redis at {}: timed out", crate::ops::database::redact(url)))?
        .with_context(|| format!("cannot connect to Redis at {}", crate::ops::database::redact(url)))?;
    Ok(pool)
}

/// A round trip, for readiness.
pub async fn ping(redis: &Redis) -> Result<(), fred::error::Error> {
    redis.ping::<()>(None).await
}
