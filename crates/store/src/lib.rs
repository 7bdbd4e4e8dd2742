//! The storage boundary. Handlers talk to `dyn Store`; `conduit-store-sqlite` and
//! `conduit-store-postgres` implement it with checked queries (written once, in `shared/`
//! beside this crate's `src/`), and both must pass [`suite`]. [`Cached`] wraps either in the
//! process's cache. The store's methods are in two traits: [`Store`], those the cache answers
//! or must hear of, and [`Uncached`], the rest, reached from a `dyn Store` by deref.

pub mod backup;
pub mod cache;
mod cached;
mod error;
pub mod moderation;
pub mod noticed;
pub mod notifications;
pub mod rows;
/// Each backend's `schema.sql`, checked against its migrations; for tests only (feature `testing`).
#[cfg(feature = "testing")]
pub mod schema_file;
/// The behaviour every backend must show; for tests only (feature `testing`).
#[cfg(feature = "testing")]
pub mod suite;
mod types;

pub use cache::Cache;
pub use cached::{Cached, ChangeFeed};
pub use error::DbError;
pub use types::*;

use conduit_domain::model::{ArticleId, CommentId, UserId};
use conduit_domain::{Article, Comment, Email, Profile, Slug, User, Username};

use crate::moderation::{BackupAction, LogEntry, LogQuery, Moderated, ModerationAction, NewReport, QueueEntry, Report};
use crate::notifications::{Notification, Resume, Tailed};

/// Which end of the running transactions [`Uncached::transactions`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Every transaction below this id has ended.
    Oldest,
    /// Every transaction running now is below this id (taking it uses up a transaction id).
    Newest,
}

/// How many tags `Store::tags` lists at most (the most used).
pub const MAX_TAGS: usize = 100;

/// The largest page of articles a listing serves. The listing statements bound their page by
/// this as a constant (PostgreSQL's generic plans need a number they can see: see the shared
/// `listings.rs`), so a larger `limit` would be cut to it.
pub const MAX_ARTICLE_PAGE: i64 = 100;

/// How many rows make a table worth warning about when it has no planner statistics.
pub const UNANALYZED_ROWS: i64 = 10_000;

/// Pages of the search index one merge step writes ([`Uncached::merge_search_index`]): 4 MiB at
/// SQLite's 4 KiB pages, tens of milliseconds of held writes.
pub const SEARCH_MERGE_PAGES: i64 = 1_000;

/// The tables that grow with a site (what [`Uncached::unanalyzed_tables`] looks at).
pub const GROWING_TABLES: [&str; 6] = ["users", "articles", "article_tags", "comments", "favorites", "follows"];

/// The most text (bytes of comment bodies and their authors' bios and image URLs) a page of
/// comments holds, whatever its `limit`: a page ends after the comment that reaches it, so a
/// page always holds at least one. JSON writes such text at most twice as long (`"` and `\`
/// are escaped; no control character is stored), so a page is at most a few megabytes: 1,000
/// comments of 64 Ki characters made a page of 78 MB before.
pub const COMMENT_PAGE_BYTES: i64 = 1_048_576;

/// The most bytes of bodies one page of an export's articles or comments holds, past the first
/// item: the export streams such pages, so what it holds at once is bounded whatever the
/// account wrote (an article is at most the request body limit, 1 MiB).
pub const EXPORT_PAGE_BYTES: i64 = 1_048_576;

/// How much of [`COMMENT_PAGE_BYTES`] `comment` takes, counted as the database counts it (UTF-8
/// bytes).
pub fn comment_bytes(comment: &conduit_domain::Comment) -> i64 {
    let bytes = |s: &str| i64::try_from(s.len()).unwrap_or(i64::MAX);
    let author = &comment.author;
    bytes(&comment.body)
        + comment.body_html.as_deref().map_or(0, bytes)
        + author.bio.as_deref().map_or(0, bytes)
        + author.image.as_deref().map_or(0, bytes)
}

/// The most articles a listing with two or three filters walks. It walks the rows of its
/// narrowest filter (by the maintained counts) and checks the others on each, so its cost is
/// bounded by that filter's size; when every filter matches more than this, it is refused
/// ([`DbError::TooBroad`]) rather than walked.
pub const MAX_COMBINED_SCAN: i64 = 10_000;

/// How many of a search's matches are ranked: its newest this many. Finding them is a walk of
/// the index newest first that stops there, so a word in 900,000 articles costs what a word in
/// 1,000 does; the price is that an older article which matches better is not found while more
/// than this many newer ones match (README "Search"). With a filter (tag, author, favorited by),
/// the newest [`MAX_COMBINED_SCAN`] matches are walked for the candidates that pass it.
pub const SEARCH_CANDIDATES: i64 = 500;

/// How many of a search's matches are ranked when it holds a phrase: its newest this many. A
/// phrase is checked article by article (where its words stand), so a common phrase's 500
/// newest matches meant reading some 16,000 articles at a million (`"rust async"`: 36 ms of
/// PostgreSQL's time, 42 ms p99 over HTTP); this many read a fifth of that. A rare phrase is
/// found as far back as [`SEARCH_WINDOW`] either way: the bound is on the matches ranked, not
/// on the articles read.
pub const PHRASE_CANDIDATES: i64 = 100;

/// How far back a search with a phrase or an excluded word looks: the newest this many articles.
/// Words alone are answered by the index's lists wherever they are; a phrase of common words
/// (`"rust rust rust"`) or a word with exclusions must check each article that has the words,
/// and when few do match, that walk would go through every article (189 ms on SQLite and seconds
/// on PostgreSQL at a million). README "Search" says what this costs.
pub const SEARCH_WINDOW: i64 = 100_000;

/// Everything Conduit keeps, as the server holds it (`Arc<dyn Store>`). Implementations must make
/// each method atomic: a multi-row write either happens whole or not at all.
///
/// Declared here are the methods a cache in front of a store ([`Cached`]) answers from memory or
/// must hear of: the reads of users by id, of an article and of the tags, and the writes that
/// change what those return. Every other method is in [`Uncached`], which a store reaches with
/// [`Store::uncached`]: `store.list_articles(..)` on a `dyn Store` (or a `Cached`) finds it there
/// by deref, so a caller need not know which of the two traits declares a method.
///
/// A new method goes into `Uncached` (and `crates/store/shared/store.rs`), unless a cache keeps
/// its answer or what it changes; only then is it declared here and written into `Cached` too.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Every other method, straight from the database: the store itself, or behind a cache the
    /// store it wraps.
    fn uncached(&self) -> &dyn Uncached;

    // --- users ---

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError>;
    /// Replaces the password hash of `username` (for migrating users from another system), and
    /// revokes their tokens. False when there is no such user.
    async fn set_password_hash(&self, username: &Username, password_hash: &str) -> Result<bool, DbError>;
    /// A new password hash revokes the user's earlier tokens (bumps `token_version`) and reset
    /// links; a new email clears `email_verified`; `changes.outgoing` is written with the change.
    /// `None` when the user no longer exists, or its token version is no longer
    /// `changes.expected_version`.
    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError>;
    /// Changes role and/or active flag of `username`; deactivation revokes their tokens.
    /// `None` when there is no such user. Fails with `DbError::LastAdmin` rather than leave no
    /// active admin (checked under a lock, so two admins demoting each other cannot both win).
    async fn set_account(&self, username: &Username, changes: &AccountChanges) -> Result<Option<User>, DbError>;
    /// Ends the tokens minted to one browser session (a logout): `session` is that session's
    /// token id (`sid`), refused from now on until `until` (Unix seconds), by which every such
    /// token has expired. False when the user no longer exists.
    async fn end_session_tokens(&self, id: UserId, session: &str, until: i64) -> Result<bool, DbError>;

    // --- the account lifecycle by mail ---

    /// Deletes the token and applies `redeem` in one transaction (see [`Redeem`]); `None` and
    /// nothing changed when it is gone, expired by `now` (Unix seconds), or its address moved on.
    async fn redeem_token(
        &self,
        selector: &str,
        verifier_hash: &str,
        now: i64,
        redeem: &Redeem,
    ) -> Result<Option<User>, DbError>;
    /// Deletes the account while its token version is still `expected_version` (false, nothing
    /// changed, otherwise), with its follows, favorites and tokens; its articles and comments
    /// per `content`. `outgoing` (a goodbye notice) is written in the same transaction.
    async fn delete_user(
        &self,
        id: UserId,
        expected_version: i64,
        content: DeletedContent,
        outgoing: &Outgoing,
    ) -> Result<bool, DbError>;

    // --- articles ---

    async fn article(&self, slug: &Slug, viewer: Option<UserId>) -> Result<Option<Article>, DbError>;
    /// Fails with `DbError::Conflict("slug")` when the slug is taken: see [`with_unique_slug`].
    /// With `held` (why), the article is held for review as it is written: hidden, with a
    /// report from no one in the queue.
    async fn create_article(
        &self,
        author: UserId,
        slug: &Slug,
        new: &NewArticle,
        held: Option<&str>,
    ) -> Result<Article, DbError>;
    /// Changes an article of `author` that still has `expected_slug`; `None` when there is no
    /// such article of theirs, or a concurrent edit renamed it (so an edit based on a stale view
    /// can never give the article a slug that does not fit its title).
    /// `slug` is the new slug when the title changes.
    async fn update_article(
        &self,
        article: ArticleId,
        author: UserId,
        expected_slug: &Slug,
        slug: Option<&Slug>,
        changes: &ArticleChanges,
    ) -> Result<Option<Article>, DbError>;
    /// Deletes an article of `author` with its tags, favorites and comments. False if none.
    async fn delete_article(&self, article: ArticleId, author: UserId) -> Result<bool, DbError>;
    /// Idempotent. `None` when no article has that slug.
    async fn favorite(&self, user: UserId, slug: &Slug) -> Result<Option<Article>, DbError>;
    async fn unfavorite(&self, user: UserId, slug: &Slug) -> Result<Option<Article>, DbError>;

    // --- demo data in bulk (`conduit seed`): each call one transaction ---

    /// Creates these articles with their tags, favorites and comments.
    async fn seed_articles(&self, articles: &[SeedArticle]) -> Result<(), DbError>;

    // --- tags ---

    /// The tags in use, most used first: at most [`MAX_TAGS`].
    async fn tags(&self) -> Result<Vec<String>, DbError>;

    // --- blocks ---

    /// `blocker` blocks `username` (idempotent), ending the follows between them; changes the
    /// blocker's row (its count of blocks), so here. False when no other user has that name.
    async fn block(&self, blocker: UserId, username: &Username) -> Result<bool, DbError>;
    /// Ends a block (idempotent). False when no user has that name.
    async fn unblock(&self, blocker: UserId, username: &Username) -> Result<bool, DbError>;

    // --- moderation ---

    /// Takes a moderator's action with its log entry, closing the target's open reports, in one
    /// transaction (see [`Moderated`] for how it can go). Here because suspending or purging
    /// changes a user, and hiding or deleting an article changes what the article cache keeps.
    async fn moderate(&self, action: &ModerationAction) -> Result<Moderated, DbError>;
}

/// A `dyn Store` is also its [`Uncached`] part, so `store.list_articles(..)` works on one.
impl<'a> std::ops::Deref for dyn Store + 'a {
    type Target = dyn Uncached;

    fn deref(&self) -> &(dyn Uncached + 'static) {
        self.uncached()
    }
}

/// The store's methods that no cache keeps or needs to hear of: each goes to the database every
/// time, whether the store is cached or not. Reached from a [`Store`] by deref (see there).
#[async_trait::async_trait]
pub trait Uncached: Send + Sync + 'static {
    /// Which database this is, for logs and `/health`.
    fn backend(&self) -> &'static str;

    /// A round trip to the database.
    async fn ping(&self) -> Result<(), DbError>;

    /// Closes connections once in-flight queries finish (graceful shutdown).
    async fn close(&self);

    /// Size and idle connections of each connection pool, for metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;

    // --- users ---

    /// Fails with `DbError::Conflict("username" | "email")` when either is taken. `outgoing`
    /// (a verification link) is written in the same transaction.
    async fn create_user(&self, new: &NewUser, outgoing: &Outgoing) -> Result<User, DbError>;
    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, DbError>;
    /// The id of the user named `username`, if any.
    async fn user_id_by_name(&self, username: &Username) -> Result<Option<UserId>, DbError>;
    /// Users oldest first (by id), all or only active (or inactive) ones, for admins.
    async fn list_users(&self, active: Option<bool>, page: Paging) -> Result<Page<User>, DbError>;
    /// Sign-ups (`signups_day`) or articles published (`posts_day`) per day, from day `since`
    /// (`YYYY-MM-DD`, UTC) on, oldest first; days without any are left out.
    async fn per_day(&self, kind: &str, since: &str) -> Result<Vec<(String, i64)>, DbError>;
    /// Users by the filters of `search` (see [`UserSearch`]).
    async fn find_users(&self, search: &UserSearch) -> Result<Vec<User>, DbError>;

    // --- the account lifecycle by mail ---

    /// Records `outgoing` for the account whose address is `email`, in one transaction; `None`
    /// (nothing written) when no account has it.
    async fn mail_account(&self, email: &Email, outgoing: &Outgoing) -> Result<Option<UserId>, DbError>;
    /// The token with this selector and purpose, expired or not: the caller compares its
    /// verifier in constant time before redeeming it.
    async fn account_token(&self, selector: &str, purpose: TokenPurpose) -> Result<Option<AccountToken>, DbError>;
    // An export, a page at a time (`GET /api/user/export` streams it): each page is bounded in
    // rows and, for articles and comments, in bytes (`EXPORT_PAGE_BYTES`).

    /// `author`'s articles with bodies, newest first, older than article id `before`.
    async fn export_articles(&self, author: UserId, before: Option<i64>, limit: i64) -> Result<Vec<Article>, DbError>;
    /// `author`'s comments, oldest first, after comment id `after`.
    async fn export_comments(
        &self,
        author: UserId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ExportedComment>, DbError>;
    /// The articles `user` favorited, as (id, slug) by id, after article id `after`.
    async fn export_favorites(
        &self,
        user: UserId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, DbError>;
    /// The usernames `user` follows, in order, after `after`.
    async fn export_follows(&self, user: UserId, after: Option<&str>, limit: i64) -> Result<Vec<String>, DbError>;
    /// Queues `mail` alone, changing no account (the answer to a reset no account can take, so
    /// that it looks like any other reset, to the outbox's counters too).
    async fn queue_mail(&self, mail: &Mail) -> Result<(), DbError>;

    // --- the outbox (times in Unix milliseconds) ---

    /// Up to `limit` due messages, each leased until `lease_until` and counted as an attempt.
    /// Several instances never claim one message at once.
    async fn claim_mail(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<QueuedMail>, DbError>;
    async fn mail_sent(&self, id: i64, now: i64) -> Result<(), DbError>;
    /// A failed attempt: due again at `retry_at`, or dead when `None`. A dead message forgets
    /// its body when `forget_body` (it carried a token, which must not outlive its sending).
    async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<i64>, forget_body: bool) -> Result<(), DbError>;
    /// The newest `limit` messages, of state `state` (`queued`, `sent`, `dead`) or all.
    async fn list_mail(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxEntry>, DbError>;
    /// Requeues every dead message that still has its body, or the one given (unless sent or
    /// without a body), due at `now` (Unix milliseconds); how many. When any was, the moderation
    /// log says so with who asked (`by`; the command line when `None`), in the same transaction.
    async fn retry_mail(&self, id: Option<i64>, now: i64, by: Option<UserId>) -> Result<u64, DbError>;
    /// Messages queued and dead, each counted up to `most`.
    async fn mail_waiting(&self, most: i64) -> Result<(i64, i64), DbError>;
    /// Deletes up to `limit` messages sent before `sent_before`, oldest first; how many.
    async fn prune_mail(&self, sent_before: i64, limit: i64) -> Result<u64, DbError>;

    // --- profiles ---

    async fn profile(&self, username: &Username, viewer: Option<UserId>) -> Result<Option<Profile>, DbError>;
    /// Idempotent. `None` when no user has that name.
    async fn follow(&self, follower: UserId, username: &Username) -> Result<Option<Profile>, DbError>;
    async fn unfollow(&self, follower: UserId, username: &Username) -> Result<Option<Profile>, DbError>;

    // --- articles ---

    /// Newest first; `total` counts all matches before limit and offset. Bodies are left out.
    async fn list_articles(&self, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError>;
    /// Articles by authors `viewer` follows, newest first, bodies left out.
    async fn feed(&self, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError>;
    /// The id and author of an article, for existence and ownership checks.
    async fn article_ref(&self, slug: &Slug) -> Result<Option<ArticleRef>, DbError>;

    // --- comments ---

    /// Oldest first, as a conversation reads; one page of them.
    async fn comments(&self, article: ArticleId, viewer: Option<UserId>, page: Paging)
    -> Result<Vec<Comment>, DbError>;
    /// With `held` (why), the comment is held for review as it is written (see
    /// [`Store::create_article`]).
    async fn create_comment(
        &self,
        article: ArticleId,
        author: UserId,
        body: &str,
        held: Option<&str>,
    ) -> Result<Comment, DbError>;
    /// The author of a comment on `article`, `None` when there is no such comment there.
    async fn comment_author(&self, article: ArticleId, comment: CommentId) -> Result<Option<UserId>, DbError>;
    /// Deletes a comment of `author`. False if none.
    async fn delete_comment(&self, comment: CommentId, author: UserId) -> Result<bool, DbError>;

    // --- browser sessions (the default session store) ---

    /// The session's data, unless it does not exist or has expired (`now`, `expires_at`: Unix
    /// seconds).
    async fn session_load(&self, id: &str, now: i64) -> Result<Option<String>, DbError>;
    /// Stores a new session; false when the id is already taken.
    async fn session_create(&self, id: &str, data: &str, expires_at: i64) -> Result<bool, DbError>;
    /// Stores a session, replacing any with that id.
    async fn session_save(&self, id: &str, data: &str, expires_at: i64) -> Result<(), DbError>;
    async fn session_delete(&self, id: &str) -> Result<(), DbError>;
    /// Deletes every session expired by `now`; returns how many.
    async fn session_delete_expired(&self, now: i64) -> Result<u64, DbError>;

    // --- demo data in bulk (`conduit seed`): each call one transaction ---

    /// Creates these users; their ids in the same order.
    async fn seed_users(&self, users: &[NewUser]) -> Result<Vec<UserId>, DbError>;
    /// Makes each first user follow the second (pairs already there are skipped).
    async fn seed_follows(&self, follows: &[(UserId, UserId)]) -> Result<(), DbError>;

    // --- planner statistics ---

    /// Gathers the query planner's statistics on every table (`ANALYZE`): after a bulk load,
    /// a planner without them picks plans that were measured 30 times slower (issue 30).
    async fn analyze(&self) -> Result<(), DbError>;
    /// The tables with at least [`UNANALYZED_ROWS`] rows (about) that have no planner statistics.
    async fn unanalyzed_tables(&self) -> Result<Vec<String>, DbError>;

    // --- search index upkeep ---

    /// How many pieces the search index is in, where it grows in pieces that every search walks
    /// at once (SQLite's FTS5: a segment per commit, merged a few at a time); `None` where it
    /// needs no upkeep (PostgreSQL's GIN index).
    async fn search_segments(&self) -> Result<Option<u64>, DbError>;
    /// One step (about [`SEARCH_MERGE_PAGES`] pages, a short write) of merging the search
    /// index's segments into one: `start` begins a merge of all of them, otherwise the one under
    /// way goes on. Nothing where [`Uncached::search_segments`] is `None`.
    async fn merge_search_index(&self, start: bool) -> Result<(), DbError>;
    /// Writes the title key (exact-title search) of every article without one: those written
    /// before it was kept. How many it wrote; 0 once done (one empty index probe).
    async fn fill_missing_title_keys(&self) -> Result<u64, DbError>;

    // --- scheduled backups ---

    /// Claims scheduled backup `slot` (its interval's number since the epoch) for instance
    /// `by`: true for exactly one caller, whichever instance it runs in.
    async fn claim_backup_slot(&self, slot: i64, by: &str, now: i64) -> Result<bool, DbError>;
    /// The email addresses of the active admins (told when a scheduled backup fails).
    async fn admin_emails(&self) -> Result<Vec<String>, DbError>;
    /// An admin (`by`) took, verified or downloaded backup `name` (a file, not a row: the log
    /// entry is all the database holds of it), in the moderation log.
    async fn log_backup(&self, by: UserId, action: BackupAction, name: &str) -> Result<(), DbError>;

    // --- tags ---

    /// A number that grows with every committed change to any article's tags: a tag list read
    /// after this number was is at least as new as it.
    async fn tags_version(&self) -> Result<i64, DbError>;

    // --- blocks ---

    /// Whether `blocker` blocks `blocked`.
    async fn blocks(&self, blocker: UserId, blocked: UserId) -> Result<bool, DbError>;
    /// The users `blocker` blocks, by id, after user id `after`.
    async fn blocked_users(&self, blocker: UserId, after: Option<i64>, limit: i64)
    -> Result<Vec<BlockedUser>, DbError>;

    // --- moderation ---

    /// Files a report; `None` when its target does not exist. `DbError::Conflict("report")`
    /// when the reporter already has an open report of that target.
    async fn report(&self, new: &NewReport) -> Result<Option<Report>, DbError>;
    /// `reporter`'s reports, newest first, older than report id `before`.
    async fn reports_of(&self, reporter: UserId, before: Option<i64>, limit: i64) -> Result<Vec<Report>, DbError>;
    /// Reported targets with open reports, oldest report first, after report id `after`: one
    /// entry per target, however many reports it has.
    async fn report_queue(&self, after: Option<i64>, limit: i64) -> Result<Vec<QueueEntry>, DbError>;
    /// The moderation log, newest first.
    async fn moderation_log(&self, query: &LogQuery) -> Result<Vec<LogEntry>, DbError>;

    // --- notifications (see `notifications`) ---

    /// A page of `user`'s notifications, newest first, with ids below `before`, and the id the
    /// next page starts below (`None` on the last page). A page can be short of `limit` (one
    /// whose article or actor is gone is skipped), so that id is the last one read, not shown.
    async fn notifications(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<Notification>, Option<i64>), DbError>;
    async fn unread_notifications(&self, user: UserId) -> Result<i64, DbError>;
    /// False when `user` has no notification `id`.
    async fn mark_notification_read(&self, user: UserId, id: i64) -> Result<bool, DbError>;
    /// Marks `user`'s notifications up to `through` (all when `None`) read; how many.
    async fn mark_notifications_read(&self, user: UserId, through: Option<i64>) -> Result<u64, DbError>;
    /// Every notification after `after`, oldest first (the streams' feed).
    async fn notifications_after(&self, after: i64, limit: i64) -> Result<Vec<Tailed>, DbError>;
    /// `user`'s notifications after `after` up to `through`, oldest first, with the new
    /// articles of those they follow (a stream resuming); `None` when more than
    /// `notifications::REPLAY_ARTICLES` articles were missed.
    async fn notifications_replay(
        &self,
        user: UserId,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Option<Vec<Tailed>>, DbError>;
    /// The ids of everyone who follows `author`.
    async fn follower_ids(&self, author: UserId) -> Result<Vec<UserId>, DbError>;
    /// Where the database's transactions stand (see [`Bound`]), as transaction ids. `None`
    /// where ids are committed in the order they are given (SQLite: one writer). The streams'
    /// tail asks to tell a gap in the ids that a running transaction will fill from one that
    /// stays (`notify::tail`).
    async fn transactions(&self, bound: Bound) -> Result<Option<i64>, DbError>;
    /// The newest notification's id, 0 when there is none.
    async fn newest_notification(&self) -> Result<i64, DbError>;
    /// Whether all of `user`'s notifications after `last` are still kept.
    async fn notifications_resume(&self, user: UserId, last: i64) -> Result<Resume, DbError>;
    /// Drops the notifications written before `before`; how many.
    async fn prune_notifications(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, DbError>;
}

/// Runs `attempt` with the title's slug and, while the store reports that slug taken, with
/// fresh suffixed ones. The unique index decides, so two writers can never share a slug.
pub async fn with_unique_slug<T, F, Fut>(title: &str, mut attempt: F) -> Result<T, DbError>
where
    F: FnMut(Slug) -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    const ATTEMPTS: usize = 8;
    let base = conduit_domain::slug::slugify(title);
    let mut slug = base.clone();
    for _ in 0..ATTEMPTS {
        match attempt(slug).await {
            Err(DbError::Conflict("slug")) => slug = conduit_domain::slug::with_suffix(&base),
            other => return other,
        }
    }
    Err(DbError::Conflict("slug"))
}
