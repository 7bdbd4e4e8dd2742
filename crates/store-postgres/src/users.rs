use chrono::Utc;
use conduit_domain::User;
use conduit_domain::model::UserId;
use conduit_store::rows::{CredentialsRow, UserRow, nullable_change};
use conduit_store::{AccountChanges, Credentials, DbError, NewUser, Page, Paging, UserChanges};
use sqlx::PgPool;

pub async fn create(db: &PgPool, new: &NewUser) -> Result<User, DbError> {
    let now = Utc::now();
    sqlx::query_as!(
        UserRow,
        r#"INSERT INTO users (username, email, password_hash, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4)
           RETURNING id AS "id!", username, email, bio, image, role, active,
                     token_version, grace_token_id, created_at"#,
        new.username,
        new.email,
        new.password_hash,
        now,
    )
    .fetch_one(db)
    .await?
    .try_into()
}

pub async fn by_id(db: &PgPool, id: UserId) -> Result<Option<User>, DbError> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id AS "id!", username, email, bio, image, role, active,
                  token_version, grace_token_id, created_at
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?
    .map(User::try_from)
    .transpose()
}

pub async fn credentials(db: &PgPool, email: &str) -> Result<Option<Credentials>, DbError> {
    sqlx::query_as!(
        CredentialsRow,
        r#"SELECT id AS "id!", username, email, bio, image, role, active,
                  token_version, grace_token_id, created_at, password_hash
           FROM users WHERE email = $1"#,
        email
    )
    .fetch_optional(db)
    .await?
    .map(Credentials::try_from)
    .transpose()
}

pub async fn update(db: &PgPool, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError> {
    let now = Utc::now();
    let (set_bio, bio) = nullable_change(&changes.bio);
    let (set_image, image) = nullable_change(&changes.image);
    sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET
               username = COALESCE($2, username),
               email = COALESCE($3, email),
               password_hash = COALESCE($4, password_hash),
               token_version = CASE WHEN $4 IS NULL THEN token_version ELSE token_version + 1 END,
               grace_token_id = CASE WHEN $4 IS NULL THEN grace_token_id ELSE $10 END,
               bio = CASE WHEN $5 THEN $6 ELSE bio END,
               image = CASE WHEN $7 THEN $8 ELSE image END,
               updated_at = $9
           WHERE id = $1
           RETURNING id AS "id!", username, email, bio, image, role, active,
                     token_version, grace_token_id, created_at"#,
        id,
        changes.username,
        changes.email,
        changes.password_hash,
        set_bio,
        bio,
        set_image,
        image,
        now,
        changes.surviving_token,
    )
    .fetch_optional(db)
    .await?
    .map(User::try_from)
    .transpose()
}

pub async fn set_password_hash(db: &PgPool, username: &str, password_hash: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    let done = sqlx::query!(
        "UPDATE users SET password_hash = $2, token_version = token_version + 1, grace_token_id = NULL, updated_at = $3 WHERE username = $1",
        username,
        password_hash,
        now
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn list(db: &PgPool, active: Option<bool>, page: Paging) -> Result<Page<User>, DbError> {
    let Paging { limit, offset } = page;
    let (rows, total) = match active {
        None => (
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", username, email, bio, image, role, active,
                          token_version, grace_token_id, created_at
                   FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"#,
                limit,
                offset
            )
            .fetch_all(db)
            .await?,
            sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#).fetch_one(db).await?,
        ),
        Some(active) => (
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", username, email, bio, image, role, active,
                          token_version, grace_token_id, created_at
                   FROM users WHERE active = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"#,
                active,
                limit,
                offset
            )
            .fetch_all(db)
            .await?,
            sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users WHERE active = $1"#, active)
                .fetch_one(db)
                .await?,
        ),
    };
    Ok(Page { items: rows.into_iter().map(User::try_from).collect::<Result<_, _>>()?, total })
}

pub async fn set_account(db: &PgPool, username: &str, changes: &AccountChanges) -> Result<Option<User>, DbError> {
    let now = Utc::now();
    let role = changes.role.map(|r| r.as_str());
    sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET
               role = COALESCE($2, role),
               active = COALESCE($3, active),
               -- Deactivation revokes every token, so reactivation does not revive them.
               token_version = CASE WHEN $3 = FALSE AND active THEN token_version + 1 ELSE token_version END,
               grace_token_id = CASE WHEN $3 = FALSE THEN NULL ELSE grace_token_id END,
               updated_at = $4
           WHERE username = $1
           RETURNING id AS "id!", username, email, bio, image, role, active,
                     token_version, grace_token_id, created_at"#,
        username,
        role,
        changes.active,
        now,
    )
    .fetch_optional(db)
    .await?
    .map(User::try_from)
    .transpose()
}
