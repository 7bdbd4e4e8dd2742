use chrono::Utc;
use conduit_domain::User;
use conduit_domain::model::UserId;
use conduit_store::rows::nullable_change;
use conduit_store::{Credentials, DbError, NewUser, UserChanges};
use sqlx::SqlitePool;

pub async fn create(db: &SqlitePool, new: &NewUser) -> Result<User, DbError> {
    let now = Utc::now();
    let id = sqlx::query_scalar!(
        r#"INSERT INTO users (username, email, password_hash, created_at, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?4)
           RETURNING id AS "id!""#,
        new.username,
        new.email,
        new.password_hash,
        now,
    )
    .fetch_one(db)
    .await?;
    Ok(User { id, username: new.username.clone(), email: new.email.clone(), bio: None, image: None })
}

pub async fn by_id(db: &SqlitePool, id: UserId) -> Result<Option<User>, DbError> {
    Ok(sqlx::query_as!(User, r#"SELECT id AS "id!", username, email, bio, image FROM users WHERE id = ?1"#, id)
        .fetch_optional(db)
        .await?)
}

pub async fn credentials(db: &SqlitePool, email: &str) -> Result<Option<Credentials>, DbError> {
    let row = sqlx::query!(
        r#"SELECT id AS "id!", username, email, bio, image, password_hash FROM users WHERE email = ?1"#,
        email
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| Credentials {
        user: User { id: r.id, username: r.username, email: r.email, bio: r.bio, image: r.image },
        password_hash: r.password_hash,
    }))
}

pub async fn update(db: &SqlitePool, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError> {
    let now = Utc::now();
    let (set_bio, bio) = nullable_change(&changes.bio);
    let (set_image, image) = nullable_change(&changes.image);
    Ok(sqlx::query_as!(
        User,
        r#"UPDATE users SET
               username = COALESCE(?2, username),
               email = COALESCE(?3, email),
               password_hash = COALESCE(?4, password_hash),
               bio = CASE WHEN ?5 THEN ?6 ELSE bio END,
               image = CASE WHEN ?7 THEN ?8 ELSE image END,
               updated_at = ?9
           WHERE id = ?1
           RETURNING id AS "id!", username, email, bio, image"#,
        id,
        changes.username,
        changes.email,
        changes.password_hash,
        set_bio,
        bio,
        set_image,
        image,
        now,
    )
    .fetch_optional(db)
    .await?)
}

pub async fn set_password_hash(db: &SqlitePool, username: &str, password_hash: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    let done = sqlx::query!(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE username = ?1",
        username,
        password_hash,
        now
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}
