//! Profiles and follows. Shared by both backends (see README.md).

use crate::Pool;
use conduit_domain::Profile;
use conduit_domain::model::UserId;
use conduit_store::DbError;

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

pub async fn follow(db: &Pool, follower: UserId, username: &str) -> Result<(), DbError> {
    let follower = follower.get();
    sqlx::query!(
        "INSERT INTO follows (follower_id, followee_id)
         SELECT $1, id FROM users WHERE username = $2
         ON CONFLICT DO NOTHING",
        follower,
        username
    )
    .execute(db)
    .await?;
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
