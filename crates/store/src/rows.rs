//! Rows as both stores' queries return them, and their conversion to domain types. Each
//! store's `query_as!` fills these, so the two backends differ only in their SQL.

use chrono::{DateTime, Utc};
use conduit_domain::model::{ArticleId, CommentId, Role, Suspension, UserId};
use conduit_domain::{Article, Comment, Profile, User};

use crate::{Credentials, DbError};
use sqlx::types::Json;

/// A user as the stores return one.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub role: String,
    pub active: bool,
    pub token_version: i64,
    /// `[[session, until], ...]` as JSON (see [`ended_sessions`]), or NULL.
    pub ended_sessions: Option<String>,
    /// `<token id> <until>` (see [`grace_token`]), or NULL.
    pub grace_token_id: Option<String>,
    /// Unix seconds; NULL when never suspended.
    pub suspended_until: Option<i64>,
    pub suspension_reason: Option<String>,
    pub blocking: i64,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = DbError;

    fn try_from(r: UserRow) -> Result<Self, DbError> {
        let role = Role::parse(&r.role)
            .ok_or_else(|| DbError::Other(format!("user {} has unknown role '{}'", r.id, r.role)))?;
        Ok(User {
            id: UserId::new(r.id),
            username: r.username,
            email: r.email,
            email_verified: r.email_verified,
            bio: r.bio,
            image: r.image,
            role,
            active: r.active,
            token_version: r.token_version,
            ended_sessions: ended_sessions::live(r.ended_sessions.as_deref()),
            grace_token: grace_token(r.grace_token_id.as_deref()),
            suspension: r
                .suspended_until
                .map(|until| Suspension { until, reason: r.suspension_reason.unwrap_or_default() }),
            blocking: r.blocking,
            created_at: r.created_at,
        })
    }
}

/// A user row with the password hash, for logins.
pub struct CredentialsRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub role: String,
    pub active: bool,
    pub token_version: i64,
    /// `[[session, until], ...]` as JSON (see [`ended_sessions`]), or NULL.
    pub ended_sessions: Option<String>,
    /// `<token id> <until>` (see [`grace_token`]), or NULL.
    pub grace_token_id: Option<String>,
    /// Unix seconds; NULL when never suspended.
    pub suspended_until: Option<i64>,
    pub suspension_reason: Option<String>,
    pub blocking: i64,
    pub created_at: DateTime<Utc>,
    pub password_hash: String,
}

impl TryFrom<CredentialsRow> for Credentials {
    type Error = DbError;

    fn try_from(r: CredentialsRow) -> Result<Self, DbError> {
        let user = UserRow {
            id: r.id,
            username: r.username,
            email: r.email,
            email_verified: r.email_verified,
            bio: r.bio,
            image: r.image,
            role: r.role,
            active: r.active,
            token_version: r.token_version,
            ended_sessions: r.ended_sessions,
            grace_token_id: r.grace_token_id,
            suspended_until: r.suspended_until,
            suspension_reason: r.suspension_reason,
            blocking: r.blocking,
            created_at: r.created_at,
        };
        Ok(Credentials { user: user.try_into()?, password_hash: r.password_hash })
    }
}

/// One article with its author and the viewer's flags. `body` is NULL in listings; tags come
/// as a JSON array in the author's order.
pub struct ArticleRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub body: Option<String>,
    pub body_html: Option<String>,
    pub tag_list: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub favorited: bool,
    pub favorites_count: i64,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
    pub hidden: bool,
}

impl From<ArticleRow> for Article {
    fn from(r: ArticleRow) -> Self {
        Article {
            id: ArticleId::new(r.id),
            slug: r.slug,
            title: r.title,
            description: r.description,
            body: r.body,
            body_html: r.body_html,
            tag_list: r.tag_list.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
            favorited: r.favorited,
            favorites_count: r.favorites_count,
            author: Profile { username: r.username, bio: r.bio, image: r.image, following: r.following },
            snippet: None,
            hidden: r.hidden,
        }
    }
}

/// One article of a listing page, as [`ArticleRow`] (without the body), plus how many articles
/// the listing has in all, so a page and its count come back in one statement.
#[derive(sqlx::FromRow)]
pub struct ListedRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub tag_list: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub favorited: bool,
    pub favorites_count: i64,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
    pub total: i64,
}

impl From<ListedRow> for Article {
    fn from(r: ListedRow) -> Self {
        Article {
            id: ArticleId::new(r.id),
            slug: r.slug,
            title: r.title,
            description: r.description,
            body: None,
            body_html: None,
            tag_list: r.tag_list.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
            favorited: r.favorited,
            favorites_count: r.favorites_count,
            author: Profile { username: r.username, bio: r.bio, image: r.image, following: r.following },
            snippet: None,
            // Listings leave hidden articles out.
            hidden: false,
        }
    }
}

/// One article of a search's page: as listed, with the start of its body, which the snippet is
/// cut from (`SearchQuery::snippet`).
#[derive(sqlx::FromRow)]
pub struct SearchedRow {
    #[sqlx(flatten)]
    pub listed: ListedRow,
    pub body: String,
}

/// A listing page from its rows. Every row carries the total; an empty page (past the end, or
/// `limit=0`) carries none, so `again`, the same listing's first row, supplies it.
pub async fn listed_page(
    rows: Vec<ListedRow>,
    again: impl Future<Output = Result<Vec<ListedRow>, DbError>>,
) -> Result<crate::Page<Article>, DbError> {
    let total = match rows.first() {
        Some(row) => row.total,
        None => again.await?.first().map_or(0, |row| row.total),
    };
    Ok(crate::Page { items: rows.into_iter().map(Article::from).collect(), total })
}

/// One comment with its author and whether the viewer follows them.
pub struct CommentRow {
    pub id: i64,
    pub body: String,
    pub body_html: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
    pub hidden: bool,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Self {
        Comment {
            id: CommentId::new(r.id),
            created_at: r.created_at,
            updated_at: r.updated_at,
            body: r.body,
            body_html: r.body_html,
            author: Profile { username: r.username, bio: r.bio, image: r.image, following: r.following },
            hidden: r.hidden,
        }
    }
}

/// An optional change of a nullable column as (change it?, new value), for SQL of the form
/// `col = CASE WHEN $n THEN $m ELSE col END`.
pub fn nullable_change(change: &Option<Option<String>>) -> (bool, Option<&str>) {
    match change {
        None => (false, None),
        Some(value) => (true, value.as_deref()),
    }
}

/// The `grace_token_id` column: the id of the token that changed the password and the time
/// (Unix seconds) until which it outlives that change; an old value without a time is none.
pub fn grace_token(raw: Option<&str>) -> Option<(String, i64)> {
    let (id, until) = raw?.split_once(' ')?;
    Some((id.to_owned(), until.parse().ok()?))
}

/// The value of the `grace_token_id` column for [`grace_token`].
pub fn grace_token_value(id: &str, until: i64) -> String {
    format!("{id} {until}")
}

/// The `ended_sessions` column of a user: the browser sessions ended by a logout, each with the
/// time (Unix seconds) by which every token minted to it has expired. Kept on the user's row so
/// that the caches that already hear every user change (see [`crate::Cache`]) hear these too.
pub mod ended_sessions {
    use serde_json::Value;

    /// More ended sessions than this within one token lifetime is not a person logging out of
    /// their browsers; rather than grow the row, every token and session of the user is ended.
    pub const MAX: usize = 32;

    /// What to write after ending `session`.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Next {
        /// The new column value.
        List(String),
        /// Too many: bump the token version (ending everything) and clear the list.
        EndEverything,
    }

    fn entries(raw: Option<&str>, now: i64) -> Vec<(String, i64)> {
        let parsed: Vec<(String, i64)> = raw.and_then(|raw| serde_json::from_str(raw).ok()).unwrap_or_default();
        parsed.into_iter().filter(|(_, until)| *until > now).collect()
    }

    /// The sessions still worth refusing tokens of.
    pub fn live(raw: Option<&str>) -> Vec<String> {
        entries(raw, chrono::Utc::now().timestamp()).into_iter().map(|(session, _)| session).collect()
    }

    /// `raw` with `session` added (until `until`) and entries past their time dropped.
    pub fn add(raw: Option<&str>, session: &str, until: i64, now: i64) -> Next {
        let mut list = entries(raw, now);
        list.retain(|(s, _)| s != session);
        if list.len() >= MAX {
            return Next::EndEverything;
        }
        list.push((session.to_owned(), until));
        let json: Vec<Value> =
            list.into_iter().map(|(s, u)| Value::from(vec![Value::from(s), Value::from(u)])).collect();
        Next::List(Value::from(json).to_string())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn adding_drops_expired_entries_and_caps_the_list() {
            let Next::List(one) = add(None, "a", 200, 100) else { panic!() };
            let Next::List(two) = add(Some(&one), "b", 300, 250) else { panic!() };
            assert_eq!(two, r#"[["b",300]]"#, "a expired at 200");
            assert_eq!(entries(Some(&two), 0), vec![("b".to_owned(), 300)]);
            assert_eq!(entries(Some("not json"), 0), vec![]);
            let mut raw = None;
            for i in 0..MAX {
                let Next::List(next) = add(raw.as_deref(), &format!("s{i}"), 1000, 0) else { panic!("{i}") };
                raw = Some(next);
            }
            assert_eq!(add(raw.as_deref(), "one more", 1000, 0), Next::EndEverything);
            assert!(matches!(add(raw.as_deref(), "s3", 1000, 0), Next::List(_)), "ending one again adds nothing");
        }
    }
}
