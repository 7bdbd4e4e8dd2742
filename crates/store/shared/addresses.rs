//! Who owns an address: a live undo link reserves the address it gives back for its account,
//! and an address held unproven after an email change owns nothing (README, "Who owns an
//! address"). Shared by both backends (see README.md).

use chrono::Utc;
use conduit_store::DbError;

use crate::Connection;

/// Whether a live undo link of an account other than `user` gives back `email`: the address is
/// that account's until the link is used or expires, so nobody else may take it.
pub async fn reserved_for_another(tx: &mut Connection, email: &str, user: i64) -> Result<bool, DbError> {
    let now = Utc::now().timestamp();
    let reserved = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM account_tokens
                          WHERE purpose = 'revert' AND email = $1 AND user_id <> $2 AND expires_at > $3) AS "reserved!: bool""#,
        email,
        user,
        now
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(reserved)
}

/// An address that an account holds without having proven it, after an
/// email change, owns nothing: before a registration takes it, that account goes back to
/// the address its newest undo link gives back (the link is spent, and the verification link
/// of the released address stops working). Only a registration releases a claim: were another
/// account's email change to do it, any account could undo anyone's pending change by naming its
/// new address.
pub async fn release_unproven_claim(tx: &mut Connection, email: &str) -> Result<(), DbError> {
    let now = Utc::now();
    let seconds = now.timestamp();
    let holder = sqlx::query!(
        r#"SELECT t.selector, t.user_id AS "user_id!", t.email, t.proven AS "proven!: bool"
           FROM users u JOIN account_tokens t ON t.user_id = u.id
           WHERE u.email = $1 AND NOT u.email_verified
             AND t.purpose = 'revert' AND t.expires_at > $2
           ORDER BY t.issued_at DESC LIMIT 1"#,
        email,
        seconds
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(holder) = holder else {
        return Ok(());
    };
    sqlx::query!(
        "UPDATE users SET email = $2, email_verified = $3, updated_at = $4 WHERE id = $1",
        holder.user_id,
        holder.email,
        holder.proven,
        now
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM account_tokens WHERE selector = $1 OR (user_id = $2 AND purpose = 'verify' AND email = $3)",
        holder.selector,
        holder.user_id,
        email
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
