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
    /// Mail the change sends (notices, a verification of a new address), in its transaction.
    pub outgoing: Outgoing,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleRef {
    pub id: ArticleId,
    pub author: UserId,
    /// Hidden by a moderator: only its author and moderators may see or touch it.
    pub hidden: bool,
    /// What a notification about it is titled (a comment on it tells its author so).
    pub title: String,
}

/// A user someone blocks, as their list of blocks shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedUser {
    pub id: i64,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub blocked_at: DateTime<Utc>,
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
    /// Words to search for: the listing is then ranked by how well each article matches,
    /// among its newest [`crate::SEARCH_CANDIDATES`] matches, and the page's cursor is a rank.
    pub search: Option<conduit_domain::search::SearchQuery>,
    pub page: Paging,
    /// Leave out the articles of authors the viewer blocks (set for a viewer who blocks anyone
    /// and is no moderator). Such a listing is built at run time (the shared `listings.rs`);
    /// its `total` is the listing's before the viewer's blocks.
    pub skip_blocked: bool,
}

impl ArticleQuery {
    /// The filters given, in a fixed order: tag, author, favorited by. None or one is the common
    /// case, each served by its own statement; two or three are walked together (the shared
    /// `listings.rs`).
    pub fn filters(&self) -> impl Iterator<Item = Filter<'_>> {
        [
            self.tag.as_deref().map(Filter::Tag),
            self.author.as_ref().map(|author| Filter::Author(author.as_str())),
            self.favorited.as_ref().map(|user| Filter::FavoritedBy(user.as_str())),
        ]
        .into_iter()
        .flatten()
    }
}

/// One filter of a listing, with its value: the articles with this tag, by this author, or
/// favorited by this user. A listing with several walks one of them (its narrowest) and checks
/// the others on each article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter<'a> {
    Tag(&'a str),
    Author(&'a str),
    FavoritedBy(&'a str),
}

impl<'a> Filter<'a> {
    /// The tag, or the author's or favoriter's username.
    pub fn value(self) -> &'a str {
        match self {
            Filter::Tag(value) | Filter::Author(value) | Filter::FavoritedBy(value) => value,
        }
    }
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
    /// The admin who makes it, named in the moderation log; `None`: the command line.
    pub by: Option<conduit_domain::model::UserId>,
}

// --- the account lifecycle by mail ---

/// What a mailed single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves the person reads mail at the token's address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
    /// Undoes an email change: sent to the old address, it restores it.
    RevertEmail,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify",
            TokenPurpose::ResetPassword => "reset",
            TokenPurpose::RevertEmail => "revert",
        }
    }
}

/// A token to record. The token itself goes out in a mail; only its selector (to find it) and
/// the hash of its verifier are stored.
#[derive(Debug, Clone)]
pub struct NewAccountToken {
    pub selector: String,
    pub verifier_hash: String,
    pub purpose: TokenPurpose,
    /// The address it is mailed to (see the `account_tokens` table).
    pub email: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// For an undo link: whether the address it gives back had been proven (verified) on the
    /// account. Proving another address ends the unproven ones. True for the other purposes.
    pub proven: bool,
}

/// A recorded token, found by its selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountToken {
    pub user: UserId,
    pub verifier_hash: String,
    pub email: String,
    pub expires_at: i64,
}

/// One message for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// What it is, for metrics and `conduit mail list`: `verify`, `reset`, `password-changed`...
    pub kind: &'static str,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// What a change mails, written in the change's own transaction: tokens to record (each
/// replaces the user's earlier ones of its purpose) and messages to queue.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub tokens: Vec<NewAccountToken>,
    pub mails: Vec<Mail>,
}

/// Using a token: what it does, applied in the transaction that deletes it.
#[derive(Debug, Clone)]
pub enum Redeem {
    /// Marks the token's address verified, if it is still the account's.
    VerifyEmail,
    /// Sets this password hash (ending every token and session of the account, and every
    /// other reset token), if the token's address is still the account's; it is then verified.
    ResetPassword { password_hash: String, outgoing: Outgoing },
    /// Gives the account back the token's address (verified) and ends every token and session.
    /// Fails with `DbError::Conflict("email")` if another account took the address since.
    RevertEmail { outgoing: Outgoing },
}

impl Redeem {
    pub fn purpose(&self) -> TokenPurpose {
        match self {
            Redeem::VerifyEmail => TokenPurpose::VerifyEmail,
            Redeem::ResetPassword { .. } => TokenPurpose::ResetPassword,
            Redeem::RevertEmail { .. } => TokenPurpose::RevertEmail,
        }
    }
}

/// What becomes of a deleted account's articles and comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletedContent {
    /// Deleted with the account.
    Delete,
    /// Kept, their author shown as [`TOMBSTONE_USERNAME`].
    Keep,
}

/// The author shown on content kept from deleted accounts: a name registration refuses, so
/// nobody can take it.
pub const TOMBSTONE_USERNAME: &str = "[deleted]";

/// A message claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
}

/// A message of the outbox as `conduit mail list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub kind: String,
    pub to: String,
    pub subject: String,
    /// Empty once sent, and once dead if it carried a token.
    pub body: String,
    /// `queued`, `sent` or `dead`.
    pub state: String,
    pub attempts: i64,
    /// Unix milliseconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// A comment of an export, with the article it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedComment {
    pub id: i64,
    pub article: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// Users as the console finds them (`Uncached::find_users`): each filter given narrows the list,
/// oldest first, after user id `after`.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    /// The start of a username or an email address, in any letter case.
    pub prefix: Option<String>,
    pub role: Option<conduit_domain::model::Role>,
    pub verified: Option<bool>,
    pub active: Option<bool>,
    /// Only users suspended at this time (Unix seconds).
    pub suspended_at: Option<i64>,
    pub after: Option<i64>,
    pub limit: i64,
}
