//! Backups: which instance takes each scheduled one, whom to tell when one fails, and what
//! admins did with them (the moderation log).

use chrono::Utc;
use conduit_domain::model::UserId;
use conduit_store::DbError;
use conduit_store::moderation::{BackupAction, Target, TargetKind};

use crate::Pool;
use crate::audit::{self, AdminEntry};

/// Claims backup `slot` for `by`: true for the one caller whose insert made the row. Slots
/// more than a hundred back are forgotten on the way.
pub async fn claim_slot(db: &Pool, slot: i64, by: &str, now: i64) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let forgotten = slot - 100;
    sqlx::query!("DELETE FROM backup_slots WHERE slot < $1", forgotten).execute(&mut *tx).await?;
    let claimed = sqlx::query!(
        "INSERT INTO backup_slots (slot, taken_by, claimed_at) VALUES ($1, $2, $3) ON CONFLICT (slot) DO NOTHING",
        slot,
        by,
        now
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    tx.commit().await?;
    Ok(claimed)
}

/// The addresses of the active admins, oldest account first.
pub async fn admin_emails(db: &Pool) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar!("SELECT email FROM users WHERE role = 'admin' AND active ORDER BY id").fetch_all(db).await?)
}

/// What an admin did with backup `name`, in the moderation log.
pub async fn log(db: &Pool, by: UserId, action: BackupAction, name: &str) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    let entry = AdminEntry {
        by: Some(by),
        action: action.as_str(),
        target: Target { kind: TargetKind::Backup, id: 0 },
        label: name,
        user: None,
        reason: "in the console",
        at: Utc::now(),
    };
    audit::log(&mut tx, &entry).await?;
    tx.commit().await?;
    Ok(())
}
