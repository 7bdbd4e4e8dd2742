//! Session records for the browser session store. Expired rows are never returned and are
//! swept by `delete_expired`. Shared by both backends (see README.md).

use crate::Pool;
use conduit_store::DbError;

pub async fn load(db: &Pool, id: &str, now: i64) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar!("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2", id, now)
        .fetch_optional(db)
        .await?)
}

pub async fn create(db: &Pool, id: &str, data: &str, expires_at: i64) -> Result<bool, DbError> {
    let done = sqlx::query!(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        id,
        data,
        expires_at
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn save(db: &Pool, id: &str, data: &str, expires_at: i64) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        id,
        data,
        expires_at
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn delete(db: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM sessions WHERE id = $1", id).execute(db).await?;
    Ok(())
}

pub async fn delete_expired(db: &Pool, now: i64) -> Result<u64, DbError> {
    Ok(sqlx::query!("DELETE FROM sessions WHERE expires_at <= $1", now).execute(db).await?.rows_affected())
}
