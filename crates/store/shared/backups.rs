//! Scheduled backups: which instance takes each one, and whom to tell when one fails.

use conduit_store::DbError;

use crate::Pool;

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
