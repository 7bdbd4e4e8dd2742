//! The time as the rate limits and the re-authentication window read it: the system's, or in a
//! test a [`ManualClock`] it moves, so a test of a window that closes after a minute does not
//! wait a minute. (Redis's counters keep Redis's own clock, shared by every instance; token
//! expiry is the token library's.)

use std::sync::Mutex;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock: what `conduit serve` runs with.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it; it starts at the system's
/// time, so tokens minted by the real clock meanwhile agree with it.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl Default for ManualClock {
    fn default() -> Self {
        Self(Mutex::new(Utc::now()))
    }
}

impl ManualClock {
    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::Duration::from_std(by).expect("a duration a test can wait");
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
