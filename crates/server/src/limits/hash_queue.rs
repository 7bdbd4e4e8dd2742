//! Password hashing off the async threads. Each Argon2 call takes ~20 ms of CPU and 19 MiB of
//! memory, so calls run on tokio's blocking pool, at most one per core at a time.
//!
//! The queue in front of them is bounded: a burst of logins and registrations past it is
//! answered 503 with `Retry-After` at once (see [`Admission`]), instead of each request holding
//! a connection and a slot of `CONDUIT_MAX_CONCURRENCY` while it waits (up to the request
//! timeout) for its turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Hashes admitted: running or waiting for a core.
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new(cores() * crate::config::DEFAULT_HASH_QUEUE_PER_CORE)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A place for one hash, running or waiting for a core. Logins and registrations take it before
/// anything else (before their body is read), so past the bound they are turned away as cheaply
/// as a request can be. It is held until the hash is done, even if the request is dropped
/// meanwhile (a client gone, a timeout), and then frees its place.
#[derive(Debug)]
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Passwords {
    /// One hash per core at a time, and at most `max_waiting` more waiting; more are refused.
    pub fn new(max_waiting: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(cores())), admitted: Arc::default(), capacity: cores() + max_waiting }
    }

    /// A place for one hash, or 503 at once when every core is busy and the queue is full.
    pub fn admit(&self) -> Result<Admission, ApiError> {
        if self.admitted.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::HashingBusy);
        }
        Ok(Admission(self.admitted.clone()))
    }

    async fn run<T: Send + 'static>(
        &self,
        admission: Admission,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        // The core and the place go with the work, not with the request: a client that hangs up
        // mid-hash drops its request, but both stay taken until the hash is done.
        let work = move || {
            let _held = (permit, admission);
            work()
        };
        tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(format!("hashing task failed: {e}")))
    }

    pub async fn hash(&self, admission: Admission, password: String) -> Result<String, ApiError> {
        self.run(admission, move || conduit_domain::password::hash(&password))
            .await?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Checks `password` against `hash`, or against a dummy when there is no user, so both
    /// cases cost the same time.
    pub async fn verify(&self, admission: Admission, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        self.run(admission, move || match hash {
            Some(hash) => conduit_domain::password::verify(&password, &hash),
            None => conduit_domain::password::verify_nobody(&password),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_request_keeps_its_core_and_place_until_the_work_is_done() {
        let passwords = Passwords::new(0);
        let admission = passwords.admit().unwrap();
        let work = passwords.run(admission, || std::thread::sleep(std::time::Duration::from_millis(500)));
        // The request is dropped (its client hung up) while the work runs.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(100), work).await.is_err());
        assert_eq!(passwords.permits.available_permits(), cores() - 1, "the core is still taken");
        assert_eq!(passwords.admitted.load(Ordering::Acquire), 1, "and the place");
        // Given back once the work is done (polled, so a slow machine cannot fail it).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while passwords.admitted.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(passwords.permits.available_permits(), cores());
        assert_eq!(passwords.admitted.load(Ordering::Acquire), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_hashes_are_refused_at_once() {
        let passwords = Passwords::new(2);
        let answers = futures::future::join_all((0..40).map(|_| async {
            let admission = passwords.admit()?;
            passwords.verify(admission, "password123".into(), None).await
        }))
        .await;
        let refused = answers.iter().filter(|a| matches!(a, Err(ApiError::HashingBusy))).count();
        let evaluated = answers.iter().filter(|a| matches!(a, Ok(false))).count();
        // One per core at once, two waiting: the rest are refused without waiting their turn.
        assert_eq!(evaluated, cores() + 2, "{answers:?}");
        assert_eq!(refused, 40 - evaluated);
        assert_eq!(passwords.admitted.load(Ordering::Acquire), 0);
    }
}
