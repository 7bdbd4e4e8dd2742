//! How long one reservation of the in-memory rate limiter takes while it holds the counters of a
//! million distinct client addresses, and while they expire (BENCHMARKS.md, issue 25, item 8).
//!
//!     cargo run --release --example limiter_sweep
//!
//! A million addresses each make one login to an account of their own (three counters each); a minute later (a clock the
//! example moves) another million do, while the first million's counters are forgotten a few at
//! a time. Printed: the slowest reservation and percentiles of each phase, the counters held,
//! and, for comparison, what one walk over every counter costs (what the sweep did before: one
//! `retain` over the whole map under the lock, once a second past 10,000 counters).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conduit_server::config::LimitSettings;
use conduit_server::limits::{RateLimiter, login_limits};
use conduit_server::ops::clock::ManualClock;

const ADDRESSES: u32 = 1_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let clock = Arc::new(ManualClock::default());
    let limiter = RateLimiter::new(None, clock.clone());
    let settings = LimitSettings::default();
    for phase in ["a million new addresses", "a million more, the first million expiring"] {
        let mut took = Vec::with_capacity(ADDRESSES as usize);
        for i in 0..ADDRESSES {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let limits = login_limits(&settings, &format!("user{i}@example.com"), ip);
            let started = Instant::now();
            limiter.reserve(&limits).await.expect("within every allowance").keep();
            took.push(started.elapsed());
            if i % 1000 == 0 {
                // A million reservations over a minute of the example's clock.
                clock.advance(Duration::from_millis(60));
            }
        }
        took.sort();
        let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
        println!(
            "{phase}: p50 {:?}, p99 {:?}, p99.99 {:?}, slowest {:?}; {} counters held",
            at(0.5),
            at(0.99),
            at(0.9999),
            took.last().unwrap(),
            limiter.counters_in_memory()
        );
        clock.advance(Duration::from_secs(1));
    }
    // The old sweep: one retain over a million counters shaped like the limiter's.
    let mut map: HashMap<String, (u64, VecDeque<(u64, u64)>)> = (0..ADDRESSES)
        .map(|i| {
            (format!("login-net:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255), (60_000, VecDeque::from([(1, 1)])))
        })
        .collect();
    let started = Instant::now();
    map.retain(|_, (window, attempts)| attempts.back().is_some_and(|(t, _)| 30_000 < t + *window));
    println!(
        "one walk over {ADDRESSES} counters (the old sweep, every second under the lock): {:?}",
        started.elapsed()
    );
}
