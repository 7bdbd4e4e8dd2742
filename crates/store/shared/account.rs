//! The account lifecycle by mail: single-use tokens, the mail a change sends (written in the
//! change's own transaction), deleting an account and exporting it. Shared by both backends
//! (see README.md).

use chrono::{DateTime, Utc};
use conduit_domain::model::UserId;
use conduit_domain::{Article, User};
use conduit_store::rows::{ArticleRow, UserRow};
use conduit_store::*;

use crate::outbox::write_outgoing;
use crate::{Connection, Pool};

/// Records `outgoing` for the account whose address is `email`; `None` when there is none. A
/// reset link is not recorded for an address the account holds unproven after an email change
/// (it would hand the account to whoever reads that address): `None` then too.
pub async fn mail_account(db: &Pool, email: &str, outgoing: &Outgoing) -> Result<Option<UserId>, DbError> {
    let resets = outgoing.tokens.iter().any(|t| t.purpose == TokenPurpose::ResetPassword);
    let now = Utc::now().timestamp();
    let mut tx = db.begin().await?;
    let Some(id) = sqlx::query_scalar!(
        r#"SELECT u.id AS "id!" FROM users u
           WHERE u.email = $1
             AND (NOT $2 OR u.email_verified OR NOT EXISTS (
                 SELECT 1 FROM account_tokens t WHERE t.user_id = u.id AND t.purpose = 'revert' AND t.expires_at > $3))"#,
        email,
        resets,
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    write_outgoing(&mut tx, UserId::new(id), outgoing).await?;
    tx.commit().await?;
    Ok(Some(UserId::new(id)))
}

/// The token with this selector and purpose, expired or not (the caller compares the verifier
/// and the time).
pub async fn token(db: &Pool, selector: &str, purpose: TokenPurpose) -> Result<Option<AccountToken>, DbError> {
    let purpose = purpose.as_str();
    let row = sqlx::query!(
        r#"SELECT user_id AS "user_id!", verifier_hash, email, expires_at AS "expires_at!: i64"
           FROM account_tokens WHERE selector = $1 AND purpose = $2"#,
        selector,
        purpose
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|r| AccountToken {
        user: UserId::new(r.user_id),
        verifier_hash: r.verifier_hash,
        email: r.email,
        expires_at: r.expires_at,
    }))
}

/// Uses a token: deletes it and applies `redeem`, in one transaction. `None` (and nothing
/// changed) when the token is gone, expired, not this verifier's, or its address is no longer
/// the account's (verify, reset).
pub async fn redeem(
    db: &Pool,
    selector: &str,
    verifier_hash: &str,
    now: i64,
    redeem: &Redeem,
) -> Result<Option<User>, DbError> {
    let mut tx = db.begin().await?;
    let Some(token) = take_token(&mut tx, selector, verifier_hash, redeem.purpose(), now).await? else {
        return Ok(None);
    };
    // The address moved on since the token was mailed: nothing happens (the rollback keeps
    // the token, which works again only if the address comes back).
    let Some(user) = apply(&mut tx, redeem, &token).await? else {
        return Ok(None);
    };
    after_redeeming(&mut tx, redeem, user.id, &token).await?;
    tx.commit().await?;
    Ok(Some(user))
}

/// A token taken to be redeemed: whose it is, the address it was mailed to, and when it was
/// issued (Unix microseconds).
struct Taken {
    user_id: i64,
    email: String,
    issued_at: i64,
}

/// Deletes the token with this selector, verifier and purpose, unless it expired by `now`.
async fn take_token(
    tx: &mut Connection,
    selector: &str,
    verifier_hash: &str,
    purpose: TokenPurpose,
    now: i64,
) -> Result<Option<Taken>, DbError> {
    let purpose = purpose.as_str();
    let token = sqlx::query!(
        r#"DELETE FROM account_tokens
           WHERE selector = $1 AND verifier_hash = $2 AND purpose = $3 AND expires_at > $4
           RETURNING user_id AS "user_id!", email, issued_at AS "issued_at!: i64""#,
        selector,
        verifier_hash,
        purpose,
        now
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(token.map(|row| Taken { user_id: row.user_id, email: row.email, issued_at: row.issued_at }))
}

/// What the token does to its account, if the token's address is still the account's (not
/// asked of a revert, which brings the address back); the account as it is then.
async fn apply(tx: &mut Connection, redeem: &Redeem, token: &Taken) -> Result<Option<User>, DbError> {
    let updated_at = Utc::now();
    let row = match redeem {
        Redeem::VerifyEmail => {
            sqlx::query_as!(
                UserRow,
                r#"UPDATE users SET email_verified = TRUE, updated_at = $3 WHERE id = $1 AND email = $2
                   RETURNING id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role,
                             active AS "active!: bool", token_version AS "token_version!", ended_sessions,
                             grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!", created_at AS "created_at!: DateTime<Utc>""#,
                token.user_id,
                token.email,
                updated_at
            )
            .fetch_optional(&mut *tx)
            .await?
        }
        Redeem::ResetPassword { password_hash, .. } => {
            sqlx::query_as!(
                UserRow,
                r#"UPDATE users SET password_hash = $3, token_version = token_version + 1, ended_sessions = NULL,
                          grace_token_id = NULL, email_verified = TRUE, updated_at = $4
                   WHERE id = $1 AND email = $2 AND active
                   RETURNING id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role,
                             active AS "active!: bool", token_version AS "token_version!", ended_sessions,
                             grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!", created_at AS "created_at!: DateTime<Utc>""#,
                token.user_id,
                token.email,
                password_hash,
                updated_at
            )
            .fetch_optional(&mut *tx)
            .await?
        }
        Redeem::RevertEmail { .. } => {
            sqlx::query_as!(
                UserRow,
                r#"UPDATE users SET email = $2, email_verified = TRUE, token_version = token_version + 1,
                          ended_sessions = NULL, grace_token_id = NULL, updated_at = $3
                   WHERE id = $1 AND active
                   RETURNING id AS "id!", username, email, email_verified AS "email_verified!: bool", bio, image, role,
                             active AS "active!: bool", token_version AS "token_version!", ended_sessions,
                             grace_token_id, suspended_until, suspension_reason, blocking AS "blocking!", created_at AS "created_at!: DateTime<Utc>""#,
                token.user_id,
                token.email,
                updated_at
            )
            .fetch_optional(&mut *tx)
            .await?
        }
    };
    row.map(User::try_from).transpose()
}

/// What a redemption ends besides, and the mail it sends. Proving an address (a verification or
/// a reset) ends the undo links that give back an address nobody proved: whoever moved the
/// account away from such an address never owned it (pre-account hijacking). A reset ends every
/// other reset link; an undo ends every token of the account but the older undo links (they give
/// back addresses held before, and outrank this one: the owner's way back survives a thief's).
async fn after_redeeming(tx: &mut Connection, redeem: &Redeem, user: UserId, token: &Taken) -> Result<(), DbError> {
    let id = user.get();
    if matches!(redeem, Redeem::VerifyEmail | Redeem::ResetPassword { .. }) {
        sqlx::query!("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'revert' AND NOT proven", id)
            .execute(&mut *tx)
            .await?;
    }
    match redeem {
        Redeem::VerifyEmail => {}
        Redeem::ResetPassword { outgoing, .. } => {
            sqlx::query!("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'reset'", id)
                .execute(&mut *tx)
                .await?;
            write_outgoing(tx, user, outgoing).await?;
        }
        Redeem::RevertEmail { outgoing } => {
            sqlx::query!(
                "DELETE FROM account_tokens WHERE user_id = $1 AND NOT (purpose = 'revert' AND issued_at < $2)",
                id,
                token.issued_at
            )
            .execute(&mut *tx)
            .await?;
            write_outgoing(tx, user, outgoing).await?;
        }
    }
    Ok(())
}

/// Deletes the account `id` while its token version is still `expected_version` (false, and
/// nothing changed, otherwise). Follows, favorites, tokens go with it by cascade; articles and
/// comments too, or are handed to the tombstone author, per `content`. The maintained counts
/// follow (by the triggers, and here for what moves to the tombstone).
pub async fn delete(
    db: &Pool,
    id: UserId,
    expected_version: i64,
    content: DeletedContent,
    outgoing: &Outgoing,
) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    if !delete_in(&mut tx, id, Some(expected_version), content, outgoing).await? {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// [`delete`] inside `tx`: false (and nothing done) when the account is gone, or its token
/// version is no longer `expected_version` (any version when `None`: a moderator's purge).
pub async fn delete_in(
    tx: &mut Connection,
    id: UserId,
    expected_version: Option<i64>,
    content: DeletedContent,
    outgoing: &Outgoing,
) -> Result<bool, DbError> {
    let id = id.get();
    let key = id.to_string();
    if content == DeletedContent::Delete {
        // Hidden articles are shown again first, so the deletes count down what they count
        // (see the `hidden_articles` migration).
        sqlx::query!(
            "DELETE FROM hidden_articles WHERE article_id IN (SELECT id FROM articles WHERE author_id = $1)",
            id
        )
        .execute(&mut *tx)
        .await?;
    }
    if content == DeletedContent::Keep {
        let now = Utc::now();
        // Created on first use; it cannot log in (inactive, no valid hash) and no registration
        // can take its name.
        sqlx::query!(
            "INSERT INTO users (username, email, password_hash, active, created_at, updated_at)
             VALUES ($1, $1, '!', FALSE, $2, $2) ON CONFLICT (username) DO NOTHING",
            TOMBSTONE_USERNAME,
            now
        )
        .execute(&mut *tx)
        .await?;
        let tombstone = sqlx::query_scalar!(r#"SELECT id AS "id!" FROM users WHERE username = $1"#, TOMBSTONE_USERNAME)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query!("UPDATE articles SET author_id = $2 WHERE author_id = $1", id, tombstone)
            .execute(&mut *tx)
            .await?;
        sqlx::query!("UPDATE comments SET author_id = $2 WHERE author_id = $1", id, tombstone)
            .execute(&mut *tx)
            .await?;
        // The articles' count moves with them (the triggers count inserts and deletes only).
        let tombstone_key = tombstone.to_string();
        sqlx::query!(
            "INSERT INTO counts (kind, key, stripe, n)
             SELECT 'author', $2, 0, COALESCE(SUM(n), 0) FROM counts WHERE kind = 'author' AND key = $1
             ON CONFLICT (kind, key, stripe) DO UPDATE SET n = counts.n + excluded.n",
            key,
            tombstone_key
        )
        .execute(&mut *tx)
        .await?;
    }
    write_outgoing(tx, UserId::new(id), outgoing).await?;
    let deleted = sqlx::query!(
        "DELETE FROM users WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR token_version = $2)",
        id,
        expected_version
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    // The cascades counted these down to zero; the rows themselves are left over.
    sqlx::query!("DELETE FROM counts WHERE kind IN ('author', 'favorited_by') AND key = $1", key)
        .execute(&mut *tx)
        .await?;
    Ok(true)
}

/// One page of an export's articles: `author`'s, newest first, older than `before` (an
/// article id), at most `limit`, and ending after the article that reaches
/// [`EXPORT_PAGE_BYTES`] bytes of bodies, so a page holds at most a few megabytes whatever the
/// account wrote. The page is chosen by the bodies' sizes alone (`octet_length` reads a value's
/// header, not the value: choosing by `LENGTH` in characters read all 50 candidates' bodies for
/// every page, 50 MB to send one article of 1 MB), and only its rows are read whole.
pub async fn export_articles(
    db: &Pool,
    author: UserId,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Article>, DbError> {
    let (author, before, budget) = (author.get(), before.unwrap_or(i64::MAX), EXPORT_PAGE_BYTES);
    let rows = sqlx::query_as!(
        ArticleRow,
        r#"SELECT a.id AS "id!", a.slug, a.title, a.description, a.body AS "body?",
                  CAST(NULL AS TEXT) AS "body_html?: String",
                  a.tag_list AS "tag_list!: sqlx::types::Json<Vec<String>>",
                  a.created_at AS "created_at!: DateTime<Utc>", a.updated_at AS "updated_at!: DateTime<Utc>",
                  EXISTS(SELECT 1 FROM favorites f WHERE f.article_id = a.id AND f.user_id = $1) AS "favorited!: bool",
                  (SELECT CAST(COALESCE(sum(fc.n), 0) AS BIGINT) FROM favorite_counts fc WHERE fc.article_id = a.id)
                      AS "favorites_count!: i64",
                  u.username, u.bio, u.image, FALSE AS "following!: bool",
                  EXISTS(SELECT 1 FROM hidden_articles h WHERE h.article_id = a.id) AS "hidden!: bool"
           FROM articles a JOIN users u ON u.id = a.author_id
           WHERE a.id IN (
               SELECT p.id FROM (SELECT w.id, w.size, SUM(w.size) OVER (ORDER BY w.id DESC) AS running
                                 FROM (SELECT c.id, octet_length(c.body) AS size FROM articles c
                                       WHERE c.author_id = $1 AND c.id < $2
                                       ORDER BY c.id DESC LIMIT $3) w) p
               WHERE p.running - p.size < $4)
           ORDER BY a.id DESC"#,
        author,
        before,
        limit,
        budget
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Article::from).collect())
}

/// One page of an export's comments: `author`'s, oldest first, after `after` (a comment id), at
/// most `limit`, ending after the comment that reaches [`EXPORT_PAGE_BYTES`] (chosen as the
/// articles are).
pub async fn export_comments(
    db: &Pool,
    author: UserId,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ExportedComment>, DbError> {
    let (author, after, budget) = (author.get(), after.unwrap_or(0), EXPORT_PAGE_BYTES);
    Ok(sqlx::query_as!(
        ExportedComment,
        r#"SELECT c.id AS "id!", a.slug AS article, c.body, c.created_at AS "created_at!: DateTime<Utc>"
           FROM comments c JOIN articles a ON a.id = c.article_id
           WHERE c.id IN (
               SELECT p.id FROM (SELECT w.id, w.size, SUM(w.size) OVER (ORDER BY w.id) AS running
                                 FROM (SELECT k.id, octet_length(k.body) AS size FROM comments k
                                       WHERE k.author_id = $1 AND k.id > $2
                                       ORDER BY k.id LIMIT $3) w) p
               WHERE p.running - p.size < $4)
           ORDER BY c.id"#,
        author,
        after,
        limit,
        budget
    )
    .fetch_all(db)
    .await?)
}

/// One page of an export's favorites: (article id, slug), by article id, after `after`.
pub async fn export_favorites(
    db: &Pool,
    user: UserId,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let (user, after) = (user.get(), after.unwrap_or(0));
    let rows = sqlx::query!(
        r#"SELECT a.id AS "id!", a.slug FROM favorites f JOIN articles a ON a.id = f.article_id
           WHERE f.user_id = $1 AND a.id > $2 ORDER BY a.id LIMIT $3"#,
        user,
        after,
        limit
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.slug)).collect())
}

/// One page of an export's follows: usernames in order, after `after`.
pub async fn export_follows(db: &Pool, user: UserId, after: Option<&str>, limit: i64) -> Result<Vec<String>, DbError> {
    let (user, after) = (user.get(), after.unwrap_or(""));
    Ok(sqlx::query_scalar!(
        "SELECT u.username FROM follows f JOIN users u ON u.id = f.followee_id
         WHERE f.follower_id = $1 AND u.username > $2 ORDER BY u.username LIMIT $3",
        user,
        after,
        limit
    )
    .fetch_all(db)
    .await?)
}
