//! Users: accounts, credentials, profile changes and revocation. Shared by both backends
//! (see README.md); the admin lock of `set_account` and the row lock of `end_session_tokens`
//! differ and live in each backend's `dialect.rs`.

use chrono::{DateTime, Utc};
use conduit_domain::User;
use conduit_domain::model::{Role, UserId};
use conduit_store::moderation::{Target, TargetKind};
use conduit_store::rows::{CredentialsRow, UserRow, ended_sessions, nullable_change};
use conduit_store::{AccountChanges, Credentials, DbError, NewUser, Outgoing, Page, Paging, UserChanges, UserSearch};

use crate::Pool;
use crate::addresses::{release_unproven_claim, reserved_for_another};
use crate::audit::{self, AdminEntry};
use crate::dialect;
use crate::outbox::write_outgoing;

/// A new account and the mail it sends (a verification link), in one transaction.
pub async fn create(db: &Pool, new: &NewUser, outgoing: &Outgoing) -> Result<User, DbError> {
    let (username, email) = (new.username.as_str(), new.email.as_str());
    let now = Utc::now();
    let mut tx = db.begin().await?;
    release_unproven_claim(&mut tx, email).await?;
    let user: User = sqlx::query_as!(
        UserRow,
        r#"INSERT INTO users (username, email, password_hash, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $4)
           RETURNING id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                     token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                     created_at AS "created_at!: DateTime<Utc>""#,
        username,
        email,
        new.password_hash,
        now,
    )
    .fetch_one(&mut *tx)
    .await?
    .try_into()?;
    if reserved_for_another(&mut tx, email, user.id.get()).await? {
        return Err(DbError::Conflict("email"));
    }
    write_outgoing(&mut tx, user.id, outgoing).await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn by_id(db: &Pool, id: UserId) -> Result<Option<User>, DbError> {
    let id = id.get();
    sqlx::query_as!(
        UserRow,
        r#"SELECT id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                  token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                  created_at AS "created_at!: DateTime<Utc>"
           FROM users WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?
    .map(User::try_from)
    .transpose()
}

pub async fn id_by_name(db: &Pool, username: &str) -> Result<Option<UserId>, DbError> {
    let id = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM users WHERE username = $1"#, username)
        .fetch_optional(db)
        .await?;
    Ok(id.map(UserId::new))
}

pub async fn credentials(db: &Pool, email: &str) -> Result<Option<Credentials>, DbError> {
    sqlx::query_as!(
        CredentialsRow,
        r#"SELECT id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                  token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                  created_at AS "created_at!: DateTime<Utc>", password_hash
           FROM users WHERE email = $1"#,
        email
    )
    .fetch_optional(db)
    .await?
    .map(Credentials::try_from)
    .transpose()
}

/// A new email clears `email_verified`; a new password ends every reset link. The change's
/// mail is written in the same transaction.
pub async fn update(db: &Pool, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError> {
    let id = id.get();
    let mut tx = db.begin().await?;
    let now = Utc::now();
    let (set_bio, bio) = nullable_change(&changes.bio);
    let (set_image, image) = nullable_change(&changes.image);
    let (username, email) = (changes.username.as_deref(), changes.email.as_deref());
    let user = sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET
               username = COALESCE($2, username),
               email = COALESCE($3, email),
               email_verified = CASE WHEN $3 IS NULL OR $3 = email THEN email_verified ELSE FALSE END,
               password_hash = COALESCE($4, password_hash),
               token_version = CASE WHEN $4 IS NULL THEN token_version ELSE token_version + 1 END,
               ended_sessions = CASE WHEN $4 IS NULL THEN ended_sessions ELSE NULL END,
               grace_token_id = CASE WHEN $4 IS NULL THEN grace_token_id ELSE $10 END,
               bio = CASE WHEN $5 THEN $6 ELSE bio END,
               image = CASE WHEN $7 THEN $8 ELSE image END,
               updated_at = $9
           WHERE id = $1 AND (CAST($11 AS BIGINT) IS NULL OR token_version = $11)
           RETURNING id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                     token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                     created_at AS "created_at!: DateTime<Utc>""#,
        id,
        username,
        email,
        changes.password_hash,
        set_bio,
        bio,
        set_image,
        image,
        now,
        changes.surviving_token,
        changes.expected_version,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(User::try_from)
    .transpose()?;
    let Some(user) = user else {
        return Ok(None);
    };
    if let Some(email) = email
        && reserved_for_another(&mut tx, email, id).await?
    {
        return Err(DbError::Conflict("email"));
    }
    if changes.password_hash.is_some() {
        sqlx::query!("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'reset'", id)
            .execute(&mut *tx)
            .await?;
    }
    write_outgoing(&mut tx, user.id, &changes.outgoing).await?;
    tx.commit().await?;
    Ok(Some(user))
}

/// Like a password change, it ends every token, session and reset link of the user.
pub async fn set_password_hash(db: &Pool, username: &str, password_hash: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let done = sqlx::query!(
        "UPDATE users SET password_hash = $2, token_version = token_version + 1, ended_sessions = NULL,
                          grace_token_id = NULL, updated_at = $3
         WHERE username = $1",
        username,
        password_hash,
        now
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM account_tokens WHERE purpose = 'reset' AND user_id = (SELECT id FROM users WHERE username = $1)",
        username
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// How many users there are, and how many of them are active: kept in `counts` by triggers,
/// not counted per request.
async fn counts(db: &Pool) -> Result<(i64, i64), DbError> {
    let row = sqlx::query!(
        r#"SELECT CAST(COALESCE(sum(CASE WHEN kind = 'users' THEN n ELSE 0 END), 0) AS BIGINT) AS "all!: i64",
                  CAST(COALESCE(sum(CASE WHEN kind = 'users_active' THEN n ELSE 0 END), 0) AS BIGINT) AS "active!: i64"
           FROM counts WHERE kind IN ('users', 'users_active') AND key = ''"#
    )
    .fetch_one(db)
    .await?;
    Ok((row.all, row.active))
}

/// The per-day counters of `kind` (`signups_day`, `posts_day`) from day `since` (`YYYY-MM-DD`,
/// UTC) on, oldest first: a few dozen rows of the maintained counts, summed over their stripes.
pub async fn per_day(db: &Pool, kind: &str, since: &str) -> Result<Vec<(String, i64)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT key AS "day!", CAST(SUM(n) AS BIGINT) AS "n!: i64" FROM counts
           WHERE kind = $1 AND key >= $2 GROUP BY key ORDER BY key"#,
        kind,
        since
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.n)).collect())
}

/// Users by `search`, built at run time (its filters combine freely), walking users by id: a
/// filter that matches many fills a page at once; one that matches few walks the whole table
/// (measured at 100,000 users in BENCHMARKS.md, "The console").
pub async fn find(db: &Pool, search: &UserSearch) -> Result<Vec<User>, DbError> {
    let prefix = search.prefix.as_deref().filter(|p| !p.is_empty()).map(str::to_lowercase);
    // A prefix few users have: those users, from a range of the lowered name and address
    // indexes (a walk by id would read every user to find none). A common one: the walk, which
    // meets them soon.
    let range = prefix.as_deref().and_then(|lo| successor(lo).map(|hi| (lo.to_owned(), hi)));
    let narrow = match &range {
        Some((lo, hi)) => match with_prefix(db, lo, hi).await? {
            0 => return Ok(Vec::new()),
            n => n <= PREFIX_CANDIDATES,
        },
        None => false,
    };
    let mut sql = sqlx::QueryBuilder::<crate::Db>::new(
        "SELECT id, username, email, email_verified, bio, image, role, active, token_version, ended_sessions, \
         grace_token_id, suspended_until, suspension_reason, blocking, created_at FROM users WHERE id > ",
    );
    sql.push_bind(search.after.unwrap_or(0));
    if let (true, Some((lo, hi))) = (narrow, range) {
        sql.push(" AND id IN (");
        push_prefix_ids(&mut sql, lo, hi);
        sql.push(")");
    } else if let Some(prefix) = search.prefix.as_deref().filter(|p| !p.is_empty()) {
        // LIKE's own characters are matched as themselves.
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for c in prefix.to_lowercase().chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        sql.push(" AND (lower(username) LIKE ");
        sql.push_bind(pattern.clone());
        sql.push(" ESCAPE '\\' OR lower(email) LIKE ");
        sql.push_bind(pattern);
        sql.push(" ESCAPE '\\')");
    }
    if let Some(role) = search.role {
        sql.push(" AND role = ");
        sql.push_bind(role.as_str());
    }
    if let Some(verified) = search.verified {
        sql.push(" AND email_verified = ");
        sql.push_bind(verified);
    }
    if let Some(active) = search.active {
        sql.push(" AND active = ");
        sql.push_bind(active);
    }
    if let Some(now) = search.suspended_at {
        sql.push(" AND suspended_until > ");
        sql.push_bind(now);
    }
    sql.push(" ORDER BY id LIMIT ");
    sql.push_bind(search.limit);
    let rows: Vec<UserRow> = sql.build_query_as().fetch_all(db).await?;
    rows.into_iter().map(User::try_from).collect()
}

/// Past this many users with a prefix, a search walks the users by id instead of listing them.
const PREFIX_CANDIDATES: i64 = 10_000;

/// The first text after every text that starts with `prefix` (its last character advanced),
/// when there is one.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    chars.push(char::from_u32(u32::from(last) + 1)?);
    Some(chars.into_iter().collect())
}

/// `SELECT id` of the users whose lowered name or address is in `[lo, hi)`.
fn push_prefix_ids(sql: &mut sqlx::QueryBuilder<'_, crate::Db>, lo: String, hi: String) {
    use crate::dialect::{LOWER_EMAIL, LOWER_USERNAME};
    sql.push(format!("SELECT id FROM users WHERE {LOWER_USERNAME} >= "));
    sql.push_bind(lo.clone());
    sql.push(format!(" AND {LOWER_USERNAME} < "));
    sql.push_bind(hi.clone());
    sql.push(format!(" UNION SELECT id FROM users WHERE {LOWER_EMAIL} >= "));
    sql.push_bind(lo);
    sql.push(format!(" AND {LOWER_EMAIL} < "));
    sql.push_bind(hi);
}

/// How many users have a name or address in `[lo, hi)`, counted up to one past
/// [`PREFIX_CANDIDATES`].
async fn with_prefix(db: &Pool, lo: &str, hi: &str) -> Result<i64, DbError> {
    let mut sql = sqlx::QueryBuilder::<crate::Db>::new("SELECT CAST(count(*) AS BIGINT) FROM (");
    push_prefix_ids(&mut sql, lo.to_owned(), hi.to_owned());
    sql.push(" LIMIT ");
    sql.push_bind(PREFIX_CANDIDATES + 1);
    sql.push(") AS candidates");
    Ok(sql.build_query_scalar().fetch_one(db).await?)
}

pub async fn list(db: &Pool, active: Option<bool>, page: Paging) -> Result<Page<User>, DbError> {
    let (limit, offset, above) = (page.limit, page.offset, page.above());
    let (rows, total) = match active {
        None => (
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                          token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                          created_at AS "created_at!: DateTime<Utc>"
                   FROM users WHERE id > $3 ORDER BY id LIMIT $1 OFFSET $2"#,
                limit,
                offset,
                above
            )
            .fetch_all(db)
            .await?,
            counts(db).await?.0,
        ),
        Some(active) => (
            sqlx::query_as!(
                UserRow,
                r#"SELECT id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                          token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                          created_at AS "created_at!: DateTime<Utc>"
                   FROM users WHERE active = $1 AND id > $4 ORDER BY id LIMIT $2 OFFSET $3"#,
                active,
                limit,
                offset,
                above
            )
            .fetch_all(db)
            .await?,
            match counts(db).await? {
                (_, active_users) if active => active_users,
                (all, active_users) => all - active_users,
            },
        ),
    };
    Ok(Page { items: rows.into_iter().map(User::try_from).collect::<Result<_, _>>()?, total })
}

pub async fn set_account(db: &Pool, username: &str, changes: &AccountChanges) -> Result<Option<User>, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let admins = dialect::lock_active_admins(&mut tx).await?;
    let steps_down = changes.role.is_some_and(|r| r != Role::Admin) || changes.active == Some(false);
    if steps_down && admins.len() == 1 && admins[0] == username {
        return Err(DbError::LastAdmin);
    }
    let role = changes.role.map(|r| r.as_str());
    let user = sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET
               role = COALESCE($2, role),
               active = COALESCE($3, active),
               -- Deactivation revokes every token, so reactivation does not revive them.
               token_version = CASE WHEN $3 = FALSE AND active THEN token_version + 1 ELSE token_version END,
               ended_sessions = CASE WHEN $3 = FALSE THEN NULL ELSE ended_sessions END,
               grace_token_id = CASE WHEN $3 = FALSE THEN NULL ELSE grace_token_id END,
               updated_at = $4
           WHERE username = $1
           RETURNING id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role, active AS "active!: bool",
                     token_version AS "token_version!", ended_sessions, grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!",
                     created_at AS "created_at!: DateTime<Utc>""#,
        username,
        role,
        changes.active,
        now,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(User::try_from)
    .transpose()?;
    if let Some(user) = &user {
        if let Some(role) = changes.role {
            log_account_change(&mut tx, changes.by, user, "role", &format!("role: {}", role.as_str()), now).await?;
        }
        match changes.active {
            Some(false) => log_account_change(&mut tx, changes.by, user, "deactivate", "deactivated", now).await?,
            Some(true) => log_account_change(&mut tx, changes.by, user, "reactivate", "reactivated", now).await?,
            None => {}
        }
    }
    tx.commit().await?;
    Ok(user)
}

/// An admin's change to `user`'s account, in the moderation log with who made it (`by`; the
/// command line when `None`), in the change's transaction.
async fn log_account_change(
    tx: &mut crate::Connection,
    by: Option<UserId>,
    user: &User,
    action: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let target = Target { kind: TargetKind::Profile, id: user.id.get() };
    let name = user.username.as_str();
    audit::log(tx, &AdminEntry { by, action, target, label: name, user: Some(name), reason, at }).await
}

pub async fn end_session_tokens(db: &Pool, id: UserId, session: &str, until: i64) -> Result<bool, DbError> {
    let id = id.get();
    let mut tx = db.begin().await?;
    let Some(current) = dialect::lock_ended_sessions(&mut tx, UserId::new(id)).await? else {
        return Ok(false);
    };
    match ended_sessions::add(current.as_deref(), session, until, Utc::now().timestamp()) {
        ended_sessions::Next::List(list) => {
            sqlx::query!("UPDATE users SET ended_sessions = $2 WHERE id = $1", id, list).execute(&mut *tx).await?
        }
        ended_sessions::Next::EndEverything => {
            sqlx::query!(
                "UPDATE users SET ended_sessions = NULL, grace_token_id = NULL, token_version = token_version + 1
                 WHERE id = $1",
                id
            )
            .execute(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    Ok(true)
}
