//! Profiles, follows and blocks. Shared by both backends (see README.md).
//!
//! A block also ends the follows between the two, both ways, and a follow is refused while
//! either blocks the other: so the feed needs no check of blocks at all.

use chrono::{DateTime, Utc};
use conduit_domain::Profile;
use conduit_domain::model::UserId;
use conduit_store::{BlockedUser, DbError};

use crate::Pool;

pub async fn get(db: &Pool, username: &str, viewer: Option<UserId>) -> Result<Option<Profile>, DbError> {
    let viewer = viewer.map(UserId::get);
    Ok(sqlx::query_as!(
        Profile,
        r#"SELECT u.username, u.bio, u.image,
                  EXISTS(SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = u.id)
                      AS "following!: bool"
           FROM users u WHERE u.username = $1"#,
        username,
        viewer
    )
    .fetch_optional(db)
    .await?)
}

/// `follower` follows `username` (idempotent); a new follow tells the followee.
pub async fn follow(db: &Pool, follower: UserId, username: &str) -> Result<(), DbError> {
    let (follower, now) = (follower.get(), Utc::now());
    let mut tx = db.begin().await?;
    let followed = sqlx::query_scalar!(
        r#"INSERT INTO follows (follower_id, followee_id)
           SELECT $1, u.id FROM users u WHERE u.username = $2
               AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = u.id AND b.blocked_id = $1)
                                                       OR (b.blocker_id = $1 AND b.blocked_id = u.id))
           ON CONFLICT DO NOTHING
           RETURNING followee_id AS "followee!""#,
        follower,
        username
    )
    .fetch_optional(&mut *tx)
    .await?;
    let written = match followed {
        Some(followee) => crate::notifications::follow(&mut tx, follower, followee, now).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    conduit_store::notifications::committed(written);
    Ok(())
}

pub async fn unfollow(db: &Pool, follower: UserId, username: &str) -> Result<(), DbError> {
    let follower = follower.get();
    sqlx::query!(
        "DELETE FROM follows
         WHERE follower_id = $1 AND followee_id = (SELECT id FROM users WHERE username = $2)",
        follower,
        username
    )
    .execute(db)
    .await?;
    Ok(())
}

/// `blocker` blocks `username` (idempotent): ends the follows between them, both ways, and
/// counts the block on the blocker's row. False when no other user has that name.
pub async fn block(db: &Pool, blocker: UserId, username: &str) -> Result<bool, DbError> {
    let (blocker, now) = (blocker.get(), Utc::now());
    let mut tx = db.begin().await?;
    let Some(blocked) = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM users WHERE username = $1"#, username)
        .fetch_optional(&mut *tx)
        .await?
        .filter(|id| *id != blocker)
    else {
        return Ok(false);
    };
    let added = sqlx::query!(
        "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        blocker,
        blocked,
        now
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        "DELETE FROM follows WHERE (follower_id = $1 AND followee_id = $2) OR (follower_id = $2 AND followee_id = $1)",
        blocker,
        blocked
    )
    .execute(&mut *tx)
    .await?;
    // Changed even when the block was there already: the row's change is what every instance
    // hears of (see `conduit_store::Cached`).
    let added = i64::try_from(added).unwrap_or(0);
    sqlx::query!("UPDATE users SET blocking = blocking + $2 WHERE id = $1", blocker, added).execute(&mut *tx).await?;
    crate::notifications::forget_blocked(&mut tx, blocker, blocked).await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends `blocker`'s block of `username` (idempotent). False when no user has that name.
pub async fn unblock(db: &Pool, blocker: UserId, username: &str) -> Result<bool, DbError> {
    let blocker = blocker.get();
    let mut tx = db.begin().await?;
    let Some(blocked) = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM users WHERE username = $1"#, username)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(false);
    };
    let removed = sqlx::query!("DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2", blocker, blocked)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let removed = i64::try_from(removed).unwrap_or(0);
    sqlx::query!("UPDATE users SET blocking = blocking - $2 WHERE id = $1", blocker, removed).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Whether `blocker` blocks `blocked`.
pub async fn blocks(db: &Pool, blocker: UserId, blocked: UserId) -> Result<bool, DbError> {
    let (blocker, blocked) = (blocker.get(), blocked.get());
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS(SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2) AS "blocks!: bool""#,
        blocker,
        blocked
    )
    .fetch_one(db)
    .await?)
}

/// The users `blocker` blocks, by id, after user id `after`.
pub async fn blocked(db: &Pool, blocker: UserId, after: Option<i64>, limit: i64) -> Result<Vec<BlockedUser>, DbError> {
    let (blocker, after) = (blocker.get(), after.unwrap_or(0));
    Ok(sqlx::query_as!(
        BlockedUser,
        r#"SELECT u.id AS "id!", u.username, u.bio, u.image, b.created_at AS "blocked_at!: DateTime<Utc>"
           FROM blocks b JOIN users u ON u.id = b.blocked_id
           WHERE b.blocker_id = $1 AND b.blocked_id > $2 ORDER BY b.blocked_id LIMIT $3"#,
        blocker,
        after,
        limit
    )
    .fetch_all(db)
    .await?)
}
