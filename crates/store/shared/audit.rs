//! The moderation log's entries by admins for what is not a moderator's answer to a report: an
//! account changed (`users::set_account`), dead mail requeued (`outbox::retry`), a backup taken,
//! verified or downloaded. Shared by both backends (see README.md). A moderator's action writes
//! its own entry, with the report it answers (`moderation::act`).

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;
use conduit_store::DbError;
use conduit_store::moderation::Target;

use crate::Connection;

/// One entry of the log, in the caller's transaction (an account change or a requeue lands
/// with its entry or not at all).
pub struct AdminEntry<'a> {
    /// Who did it; the command line when `None`.
    pub by: Option<UserId>,
    /// One of `moderation::LOGGED_ACTIONS`.
    pub action: &'a str,
    pub target: Target,
    /// The target as it is named now (a username, a file's name, a message).
    pub label: &'a str,
    /// Whose it is, when it is somebody's.
    pub user: Option<&'a str>,
    pub reason: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn log(tx: &mut Connection, entry: &AdminEntry<'_>) -> Result<(), DbError> {
    let (actor_id, actor) = match entry.by {
        Some(id) => {
            let id = id.get();
            let name = sqlx::query_scalar!("SELECT username FROM users WHERE id = $1", id).fetch_one(&mut *tx).await?;
            (id, name)
        }
        None => (0, "(command line)".to_owned()),
    };
    let (kind, target_id) = (entry.target.kind.as_str(), entry.target.id);
    sqlx::query!(
        "INSERT INTO moderation_log (at, moderator_id, moderator, action, target_kind, target_id, target, target_user, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        entry.at,
        actor_id,
        actor,
        entry.action,
        kind,
        target_id,
        entry.label,
        entry.user,
        entry.reason
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}
