//! The mail sender: a background task that claims due messages from the outbox, sends them
//! (SMTP with lettre, a folder, or the log when chosen), and marks each one sent (its text,
//! which may carry a token, forgotten), or failed with a retry after an exponential backoff, or
//! dead after the last try (forgetting its text if that carried a token). With no transport
//! configured, mail stays queued in the outbox for `conduit mail list --show` to read: no
//! token is ever written to the log unless the operator chose the log as the transport. Sent
//! mail is deleted after `CONDUIT_MAIL_RETENTION_DAYS`.
//!
//! Every instance runs one. They share the outbox through the store's claims (on PostgreSQL
//! `FOR UPDATE SKIP LOCKED`), so a message goes to one sender. A claim is a lease that outlives
//! the longest send: should an instance die mid-send, the message is due again once the lease
//! ends and another instance (or this one, restarted) sends it. Delivery is therefore at least
//! once: only a crash after the SMTP server accepted a message and before it was marked sent
//! can send it twice.
//!
//! The sender wakes when this instance queued mail, and every second to find mail queued by
//! other instances and retries coming due. On SIGTERM it sends what is due, then stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use conduit_store::{QueuedMail, Store};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{MailSettings, SmtpUrl};
use crate::mail::compose::Composer;
use crate::ops::metrics::Metrics;

/// Messages claimed and sent at once.
const BATCH: i64 = 8;
/// How often to look for mail this instance did not queue (other instances', retries).
const POLL: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a message.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How often sent mail past its retention is deleted, and how much at a time.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_BATCH: i64 = 1000;

/// Where messages go.
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
    /// `CONDUIT_SMTP_URL=log:`: each message is a log line, links included.
    Log,
}

impl Transport {
    /// The configured transport; `None` when there is none (mail stays queued).
    fn new(settings: &MailSettings) -> anyhow::Result<Option<Transport>> {
        let Some(url) = &settings.smtp_url else { return Ok(None) };
        Ok(Some(match url {
            SmtpUrl::Smtp(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("invalid CONDUIT_SMTP_URL")?
                    .timeout(Some(settings.smtp_timeout))
                    .build(),
            ),
            SmtpUrl::Folder(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the mail folder {} (CONDUIT_SMTP_URL)", dir.display()))?;
                Transport::Folder(dir.clone())
            }
            SmtpUrl::Log => Transport::Log,
        }))
    }

    fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) => "SMTP".into(),
            Transport::Folder(dir) => format!("the folder {}", dir.display()),
            Transport::Log => "the log (CONDUIT_SMTP_URL=log:)".into(),
        }
    }

    /// Sends one message. `Err((text, permanent))`: a permanent failure (the server refused the
    /// message or recipient for good) is not retried.
    async fn send(&self, from: &Mailbox, mail: &QueuedMail) -> Result<(), (String, bool)> {
        let message = || -> Result<lettre::Message, (String, bool)> {
            let to: Mailbox = mail.to.parse().map_err(|e| (format!("bad recipient: {e}"), true))?;
            lettre::Message::builder()
                .from(from.clone())
                .to(to)
                .subject(mail.subject.clone())
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body.clone())
                .map_err(|e| (format!("cannot build the message: {e}"), true))
        };
        match self {
            Transport::Smtp(smtp) => {
                smtp.send(message()?).await.map(drop).map_err(|e| (e.to_string(), e.is_permanent()))
            }
            Transport::Folder(dir) => {
                // Written under a hidden name, then renamed: whatever picks the folder up
                // (a person, a script) never reads half a message.
                let part = dir.join(format!(".{}.eml.part", mail.id));
                let path = dir.join(format!("{}.eml", mail.id));
                let bytes = message()?.formatted();
                tokio::task::spawn_blocking(move || {
                    std::fs::write(&part, bytes).and_then(|()| std::fs::rename(&part, &path))
                })
                .await
                .map_err(|e| (e.to_string(), false))?
                .map_err(|e| (format!("cannot write to the mail folder: {e}"), false))
            }
            Transport::Log => {
                tracing::info!(mail.id = mail.id, mail.kind = %mail.kind, to = %mail.to, subject = %mail.subject,
                    body = %mail.body, "mail written to the log (CONDUIT_SMTP_URL=log:)");
                Ok(())
            }
        }
    }
}

/// The running sender; [`Sender::drain`] stops it.
pub struct Sender {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Starts this instance's sender. Fails (at start-up, one line) on an unusable configuration.
pub fn start(store: Arc<dyn Store>, mail: Arc<Composer>, metrics: Arc<Metrics>) -> anyhow::Result<Sender> {
    let settings = &mail.settings;
    let transport = Transport::new(settings)?;
    let from: Mailbox = settings
        .mail_from
        .parse()
        .map_err(|e| anyhow::anyhow!("invalid CONDUIT_MAIL_FROM '{}': {e}", settings.mail_from))?;
    match &transport {
        Some(transport) => tracing::info!(to = %transport.describe(), "mail sender started"),
        None => tracing::warn!(
            "no CONDUIT_SMTP_URL: mail is not sent but kept queued in the outbox; read it with `conduit mail list --show`"
        ),
    }
    let (stop, stopping) = watch::channel(false);
    let worker = Worker { store, mail, metrics, transport, from };
    Ok(Sender { stop, task: tokio::spawn(worker.run(stopping)) })
}

impl Sender {
    /// Stops taking new work, sends what is due now, and waits for that at most `within`.
    /// False when time ran out (what was left stays queued for the next start).
    pub async fn drain(self, within: Duration) -> bool {
        let _ = self.stop.send(true);
        tokio::time::timeout(within, self.task).await.is_ok()
    }
}

struct Worker {
    store: Arc<dyn Store>,
    mail: Arc<Composer>,
    metrics: Arc<Metrics>,
    /// `None`: nothing is sent (mail stays queued).
    transport: Option<Transport>,
    from: Mailbox,
}

impl Worker {
    async fn run(self, mut stopping: watch::Receiver<bool>) {
        let mut pruned = tokio::time::Instant::now();
        self.prune().await;
        loop {
            if let Some(transport) = &self.transport {
                self.send_due(transport).await;
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                self.prune().await;
                pruned = tokio::time::Instant::now();
            }
            if *stopping.borrow() {
                return;
            }
            tokio::select! {
                () = self.mail.woken() => {}
                () = tokio::time::sleep(POLL) => {}
                _ = stopping.changed() => {}
            }
        }
    }

    /// Deletes sent mail past its retention, a batch at a time.
    async fn prune(&self) {
        let retention = i64::from(self.mail.settings.mail_retention_days) * 86_400_000;
        loop {
            match self.store.prune_mail(now_ms() - retention, PRUNE_BATCH).await {
                Ok(n) if n == PRUNE_BATCH as u64 => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot delete old sent mail; retrying later");
                    return;
                }
            }
        }
    }

    /// Sends batches until nothing is due (or the store fails: the next round tries again).
    async fn send_due(&self, transport: &Transport) {
        let settings = &self.mail.settings;
        // Longer than any send (each is cut off at the timeout) plus the writes around it.
        let lease = (settings.smtp_timeout * 2 + Duration::from_secs(5)).as_millis() as i64;
        loop {
            let now = now_ms();
            let batch = match self.store.claim_mail(now, now + lease, BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the outbox; retrying");
                    return;
                }
            };
            if batch.is_empty() {
                return;
            }
            futures::future::join_all(batch.iter().map(|mail| self.send_one(transport, mail))).await;
        }
    }

    async fn send_one(&self, transport: &Transport, mail: &QueuedMail) {
        let settings = &self.mail.settings;
        let sent = match tokio::time::timeout(settings.smtp_timeout, transport.send(&self.from, mail)).await {
            Ok(result) => result,
            Err(_) => Err((format!("no answer within {:?}", settings.smtp_timeout), false)),
        };
        let recorded = match sent {
            Ok(()) => {
                self.metrics.record_mail("sent", 1);
                tracing::info!(mail.id = mail.id, mail.kind = %mail.kind, attempts = mail.attempts,
                    to = %transport.describe(), "mail delivered");
                self.store.mail_sent(mail.id, now_ms()).await
            }
            Err((error, permanent)) => {
                let last = permanent || mail.attempts >= i64::from(settings.mail_max_attempts);
                let retry_at =
                    (!last).then(|| now_ms() + backoff(settings.mail_retry, mail.attempts).as_millis() as i64);
                self.metrics.record_mail(if last { "dead" } else { "failed" }, 1);
                tracing::warn!(mail.id = mail.id, mail.kind = %mail.kind, attempts = mail.attempts, %error,
                    dead = last, "mail not sent");
                let forget_body = last && Composer::holds_token(&mail.body);
                self.store.mail_failed(mail.id, &error, retry_at, forget_body).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the message is tried again: at least once, never lost.
            tracing::warn!(mail.id = mail.id, error = %e, "cannot record the outcome of a send");
        }
    }
}

/// The wait before try `attempts + 1`: `base` doubled per failed try, at most an hour, less up
/// to a tenth at random so instances that failed together do not retry together.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let wait = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    wait.mul_f64(1.0 - rand::random::<f64>() / 10.0)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(30);
        let around = |attempts, secs: u64| {
            let wait = backoff(base, attempts);
            assert!(
                wait <= Duration::from_secs(secs) && wait >= Duration::from_secs(secs).mul_f64(0.9),
                "{attempts}: {wait:?}"
            );
        };
        around(1, 30);
        around(2, 60);
        around(4, 240);
        around(9, 3600);
        around(1000, 3600);
    }
}
