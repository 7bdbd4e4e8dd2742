//! Inputs and outputs of the store that are not domain types.

use chrono::{DateTime, Utc};
use conduit_domain::model::{ArticleId, UserId};
use conduit_domain::{Email, Slug, User, Username};

/// One article of demo data (`conduit seed`), with the favorites and comments it gets.
#[derive(Debug, Clone)]
pub struct SeedArticle {
    pub author: UserId,
    pub slug: Slug,
    pub article: NewArticle,
    pub created_at: DateTime<Utc>,
    pub favorited_by: Vec<UserId>,
    /// Each comment's author and body.
    pub comments: Vec<(UserId, String)>,
}

/// A validated registration, password already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
}

/// A user with the hash their password must match.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// A validated change to a user. `None` leaves a field alone; for `bio` and `image`,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<Username>,
    pub email: Option<Email>,
    /// A new password ends every earlier token and session (bumps `token_version`).
    pub password_hash: Option<String>,
    /// With a new password: the token making the change, which outlives it until the given
    /// time (see `rows::grace_token_value`). `None`: no token survives.
    pub surviving_token: Option<String>,
    /// Change only while the user's token version is still this: a request whose credential
    /// was revoked while it ran (a password change, a deactivation) changes nothing.
    pub expected_version: Option<i64>,
    pub bio: Option<Option<String>>,
    pub image: Option<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct NewArticle {
    pub title: String,
    pub description: String,
    pub body: String,
    pub tags: Vec<String>,
}

/// A validated change to an article. `None` leaves a field alone; `tags: Some(vec![])`
/// removes every tag.
#[derive(Debug, Clone, Default)]
pub struct ArticleChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArticleRef {
    pub id: ArticleId,
    pub author: UserId,
}

/// A page of a listing, already validated and capped by the caller: up to `limit` items, past
/// `cursor` when given (the id of the previous page's last item: keyset pagination, as cheap
/// deep in a listing as at its start), then past `offset` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub limit: i64,
    pub offset: i64,
    pub cursor: Option<i64>,
}

impl Default for Paging {
    fn default() -> Self {
        Self { limit: 20, offset: 0, cursor: None }
    }
}

impl Paging {
    /// The keyset bound of a newest-first listing: ids below this.
    pub fn below(&self) -> i64 {
        self.cursor.unwrap_or(i64::MAX)
    }

    /// The keyset bound of an oldest-first listing: ids above this.
    pub fn above(&self) -> i64 {
        self.cursor.unwrap_or(i64::MIN)
    }
}

/// Filters of `GET /articles`. Each given filter narrows the result (they combine with AND).
#[derive(Debug, Clone, Default)]
pub struct ArticleQuery {
    pub tag: Option<String>,
    pub author: Option<Username>,
    pub favorited: Option<Username>,
    pub page: Paging,
}

impl ArticleQuery {
    /// The one filter given, when exactly one is: the common case, served by its own query.
    pub fn shape(&self) -> FilterShape<'_> {
        match (&self.tag, &self.author, &self.favorited) {
            (None, None, None) => FilterShape::All,
            (Some(tag), None, None) => FilterShape::Tag(tag),
            (None, Some(author), None) => FilterShape::Author(author),
            (None, None, Some(user)) => FilterShape::FavoritedBy(user),
            _ => FilterShape::Combined,
        }
    }
}

/// Which query serves a listing. One statement per shape, rather than one statement with
/// `($1 IS NULL OR col = $1)` filters, lets PostgreSQL plan each with its own index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterShape<'a> {
    All,
    Tag(&'a str),
    Author(&'a str),
    FavoritedBy(&'a str),
    Combined,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// One connection pool's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub name: &'static str,
    pub size: u32,
    pub idle: usize,
}

impl PoolStats {
    pub fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> Self {
        Self { name, size: pool.size(), idle: pool.num_idle() }
    }
}

/// An admin's change to an account. `None` leaves a field alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountChanges {
    pub role: Option<conduit_domain::model::Role>,
    pub active: Option<bool>,
}
