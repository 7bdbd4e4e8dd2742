//! Password hashing off the async threads. Each Argon2 call takes ~20 ms of CPU and 19 MiB of
//! memory, so calls run on tokio's blocking pool, at most one per core at a time: a burst of
//! logins queues here instead of stalling request handling or exhausting memory.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self { permits: Arc::new(Semaphore::new(cores)) }
    }
}

impl Passwords {
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let _permit = self.permits.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(format!("hashing task failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || conduit_domain::password::hash(&password))
            .await?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Checks `password` against `hash`, or against a dummy when there is no user, so both
    /// cases cost the same time.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, ApiError> {
        self.run(move || match hash {
            Some(hash) => conduit_domain::password::verify(&password, &hash),
            None => conduit_domain::password::verify_nobody(&password),
        })
        .await
    }
}
