//! The outbox: mail queued by the changes that cause it ([`write_outgoing`], with the tokens the
//! mail carries), claimed,
//! sent and marked by the mail sender. Shared by both backends (see README.md); claiming
//! differs (`dialect::claim_mail`: PostgreSQL skips rows another instance holds).

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;
use conduit_store::moderation::{Target, TargetKind};
use conduit_store::{DbError, Mail, OutboxEntry, Outgoing, QueuedMail, TokenPurpose};

use crate::audit::{self, AdminEntry};
use crate::{Connection, Pool, dialect};

/// Records `outgoing` in the caller's transaction: a verification or reset token replaces
/// `user`'s earlier one of its purpose (so a newer reset link ends the older); undo links never
/// replace each other (each gives back an address of its own, and works until it is used or
/// expires, whatever changes follow); each mail is queued, due now.
pub async fn write_outgoing(tx: &mut Connection, user: UserId, outgoing: &Outgoing) -> Result<(), DbError> {
    let user = user.get();
    let issued_at = Utc::now().timestamp_micros();
    for token in &outgoing.tokens {
        let purpose = token.purpose.as_str();
        if token.purpose != TokenPurpose::RevertEmail {
            sqlx::query!("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2", user, purpose)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query!(
            "INSERT INTO account_tokens (selector, verifier_hash, user_id, purpose, email, expires_at, proven, issued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            token.selector,
            token.verifier_hash,
            user,
            purpose,
            token.email,
            token.expires_at,
            token.proven,
            issued_at
        )
        .execute(&mut *tx)
        .await?;
    }
    for mail in &outgoing.mails {
        insert(tx, mail).await?;
    }
    Ok(())
}

/// Queues `mail` in the caller's transaction, due now.
pub async fn insert(tx: &mut Connection, mail: &Mail) -> Result<(), DbError> {
    let now = Utc::now().timestamp_millis();
    sqlx::query!(
        "INSERT INTO outbox (kind, recipient, subject, body, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
        mail.kind,
        mail.to,
        mail.subject,
        mail.body,
        now
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Queues `mail` alone, changing no account.
pub async fn queue(db: &Pool, mail: &Mail) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    insert(&mut tx, mail).await?;
    tx.commit().await?;
    Ok(())
}

/// Up to `limit` due messages (`next_attempt_at <= now`), each leased until `lease_until` and
/// counted as one more attempt. Times are Unix milliseconds.
pub async fn claim(db: &Pool, now: i64, lease_until: i64, limit: i64) -> Result<Vec<QueuedMail>, DbError> {
    dialect::claim_mail(db, now, lease_until, limit).await
}

/// Sent: it stays listed, without its body (which may hold a token).
pub async fn sent(db: &Pool, id: i64, now: i64) -> Result<(), DbError> {
    sqlx::query!("UPDATE outbox SET state = 'sent', sent_at = $2, body = '', last_error = NULL WHERE id = $1", id, now)
        .execute(db)
        .await?;
    Ok(())
}

/// A failed attempt: due again at `retry_at`, or dead (`None`) until `conduit mail retry`; a
/// dead one forgets its body when `forget_body`.
pub async fn failed(db: &Pool, id: i64, error: &str, retry_at: Option<i64>, forget_body: bool) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE outbox SET
             state = CASE WHEN CAST($3 AS BIGINT) IS NULL THEN 'dead' ELSE 'queued' END,
             next_attempt_at = COALESCE($3, next_attempt_at),
             last_error = $2,
             body = CASE WHEN CAST($3 AS BIGINT) IS NULL AND $4 THEN '' ELSE body END
         WHERE id = $1",
        id,
        error,
        retry_at,
        forget_body
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The newest `limit` messages, of one state or all.
pub async fn list(db: &Pool, state: Option<&str>, limit: i64) -> Result<Vec<OutboxEntry>, DbError> {
    Ok(sqlx::query_as!(
        OutboxEntry,
        r#"SELECT id AS "id!", kind, recipient AS "to", subject, body, state, attempts AS "attempts!: i64",
                  next_attempt_at AS "next_attempt_at!: i64", last_error, created_at AS "created_at!: i64",
                  sent_at AS "sent_at?: i64"
           FROM outbox WHERE CAST($1 AS TEXT) IS NULL OR state = $1 ORDER BY id DESC LIMIT $2"#,
        state,
        limit
    )
    .fetch_all(db)
    .await?)
}

/// How many messages are queued and how many dead, each counted up to `most` (by their
/// partial indexes: a count never reads the sent mail).
pub async fn waiting(db: &Pool, most: i64) -> Result<(i64, i64), DbError> {
    let row = sqlx::query!(
        r#"SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE state = 'queued' LIMIT $1) q) AS "queued!: i64",
                  (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE state = 'dead' LIMIT $1) d) AS "dead!: i64""#,
        most
    )
    .fetch_one(db)
    .await?;
    Ok((row.queued, row.dead))
}

/// Deletes up to `limit` messages sent before `sent_before` (by the partial index of sent
/// messages); how many.
pub async fn prune(db: &Pool, sent_before: i64, limit: i64) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "DELETE FROM outbox WHERE id IN
             (SELECT id FROM outbox WHERE state = 'sent' AND sent_at < $1 ORDER BY sent_at LIMIT $2)",
        sent_before,
        limit
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Makes dead messages (or the one given, unless it was sent) due at `now` with a fresh count
/// of attempts, logged with who asked (`by`) when any was; how many.
pub async fn retry(db: &Pool, id: Option<i64>, now: i64, by: Option<UserId>) -> Result<u64, DbError> {
    let mut tx = db.begin().await?;
    let done = sqlx::query!(
        "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $2, last_error = NULL
         WHERE body <> '' AND ((CAST($1 AS BIGINT) IS NULL AND state = 'dead') OR (id = $1 AND state <> 'sent'))",
        id,
        now
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done > 0 {
        let label = id.map_or_else(|| "every dead message".to_owned(), |id| format!("#{id}"));
        let entry = AdminEntry {
            by,
            action: "requeue",
            target: Target { kind: TargetKind::Mail, id: id.unwrap_or(0) },
            label: &label,
            user: None,
            reason: &format!("{done} requeued"),
            at: DateTime::from_timestamp_millis(now).unwrap_or_else(Utc::now),
        };
        audit::log(&mut tx, &entry).await?;
    }
    tx.commit().await?;
    Ok(done)
}
