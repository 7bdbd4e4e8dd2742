//! `impl Store` and `impl Uncached` for this backend: each method is one function of a resource
//! module beside this file (users, account, outbox, profiles, articles, listings, comments,
//! sessions, seed). Shared by both backends (see README.md). Caching is not here: the server
//! wraps a store in `conduit_store::Cached`.
//!
//! `ThisStore` is the including crate's store struct: `SqliteStore` in
//! `crates/store-sqlite/src/lib.rs`, `PgStore` in `crates/store-postgres/src/lib.rs` (each
//! crate names it with `type ThisStore = ...;`, since this file is compiled into both).

use async_trait::async_trait;
use conduit_domain::model::{ArticleId, CommentId, UserId};
use conduit_domain::{Article, Comment, Email, Profile, Slug, User, Username};
use conduit_store::*;
use tracing::instrument;

use crate::{
    BACKEND, ThisStore, account, articles, backups, comments, dialect, listings, moderation, notifications, outbox,
    profiles, search, seed, sessions, users,
};
use conduit_store::moderation::{
    BackupAction, LogEntry, LogQuery, Moderated, ModerationAction, NewReport, QueueEntry, Report,
};
use conduit_store::notifications::{Notification, Resume, Tailed};

/// The methods a cache in front of the store answers or must hear of (see `conduit_store::Store`).
#[async_trait]
impl Store for ThisStore {
    fn uncached(&self) -> &dyn Uncached {
        self
    }

    // --- users ---

    #[instrument(name = "store.user_by_id", skip_all, fields(db.system = BACKEND))]
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        users::by_id(&self.read, id).await
    }

    #[instrument(name = "store.set_password_hash", skip_all, fields(db.system = BACKEND))]
    async fn set_password_hash(&self, username: &Username, password_hash: &str) -> Result<bool, DbError> {
        users::set_password_hash(&self.write, username, password_hash).await
    }

    #[instrument(name = "store.update_user", skip_all, fields(db.system = BACKEND))]
    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError> {
        users::update(&self.write, id, changes).await
    }

    #[instrument(name = "store.set_account", skip_all, fields(db.system = BACKEND))]
    async fn set_account(&self, username: &Username, changes: &AccountChanges) -> Result<Option<User>, DbError> {
        users::set_account(&self.write, username, changes).await
    }

    #[instrument(name = "store.end_session_tokens", skip_all, fields(db.system = BACKEND))]
    async fn end_session_tokens(&self, id: UserId, session: &str, until: i64) -> Result<bool, DbError> {
        users::end_session_tokens(&self.write, id, session, until).await
    }

    // --- the account lifecycle by mail ---

    #[instrument(name = "store.redeem_token", skip_all, fields(db.system = BACKEND))]
    async fn redeem_token(
        &self,
        selector: &str,
        verifier_hash: &str,
        now: i64,
        redeem: &Redeem,
    ) -> Result<Option<User>, DbError> {
        account::redeem(&self.write, selector, verifier_hash, now, redeem).await
    }

    #[instrument(name = "store.delete_user", skip_all, fields(db.system = BACKEND))]
    async fn delete_user(
        &self,
        id: UserId,
        expected_version: i64,
        content: DeletedContent,
        outgoing: &Outgoing,
    ) -> Result<bool, DbError> {
        account::delete(&self.write, id, expected_version, content, outgoing).await
    }

    // --- articles ---

    #[instrument(name = "store.article", skip_all, fields(db.system = BACKEND))]
    async fn article(&self, slug: &Slug, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
        articles::by_slug(&self.read, slug, viewer).await
    }

    #[instrument(name = "store.create_article", skip_all, fields(db.system = BACKEND))]
    async fn create_article(
        &self,
        author: UserId,
        slug: &Slug,
        new: &NewArticle,
        held: Option<&str>,
    ) -> Result<Article, DbError> {
        articles::create(&self.write, author, slug, new, held).await?;
        // Read back through the writer: it has certainly seen its own commit.
        articles::by_slug(&self.write, slug, Some(author)).await?.ok_or_else(DbError::vanished)
    }

    #[instrument(name = "store.update_article", skip_all, fields(db.system = BACKEND))]
    async fn update_article(
        &self,
        article: ArticleId,
        author: UserId,
        expected_slug: &Slug,
        slug: Option<&Slug>,
        changes: &ArticleChanges,
    ) -> Result<Option<Article>, DbError> {
        let slug = slug.map(Slug::as_str);
        match articles::update(&self.write, article, author, expected_slug, slug, changes).await? {
            Some(slug) => articles::by_slug(&self.write, &slug, Some(author)).await,
            None => Ok(None),
        }
    }

    #[instrument(name = "store.delete_article", skip_all, fields(db.system = BACKEND))]
    async fn delete_article(&self, article: ArticleId, author: UserId) -> Result<bool, DbError> {
        articles::delete(&self.write, article, author).await
    }

    #[instrument(name = "store.favorite", skip_all, fields(db.system = BACKEND))]
    async fn favorite(&self, user: UserId, slug: &Slug) -> Result<Option<Article>, DbError> {
        articles::favorite(&self.write, user, slug).await?;
        articles::by_slug(&self.write, slug, Some(user)).await
    }

    #[instrument(name = "store.unfavorite", skip_all, fields(db.system = BACKEND))]
    async fn unfavorite(&self, user: UserId, slug: &Slug) -> Result<Option<Article>, DbError> {
        articles::unfavorite(&self.write, user, slug).await?;
        articles::by_slug(&self.write, slug, Some(user)).await
    }

    // --- demo data in bulk ---

    #[instrument(name = "store.seed_articles", skip_all, fields(db.system = BACKEND))]
    async fn seed_articles(&self, articles: &[SeedArticle]) -> Result<(), DbError> {
        seed::articles(&self.write, articles).await
    }

    // --- tags ---

    #[instrument(name = "store.tags", skip_all, fields(db.system = BACKEND))]
    async fn tags(&self) -> Result<Vec<String>, DbError> {
        articles::tags(&self.read).await
    }

    // --- blocks ---

    #[instrument(name = "store.block", skip_all, fields(db.system = BACKEND))]
    async fn block(&self, blocker: UserId, username: &Username) -> Result<bool, DbError> {
        profiles::block(&self.write, blocker, username).await
    }

    #[instrument(name = "store.unblock", skip_all, fields(db.system = BACKEND))]
    async fn unblock(&self, blocker: UserId, username: &Username) -> Result<bool, DbError> {
        profiles::unblock(&self.write, blocker, username).await
    }

    // --- moderation ---

    #[instrument(name = "store.moderate", skip_all, fields(db.system = BACKEND))]
    async fn moderate(&self, action: &ModerationAction) -> Result<Moderated, DbError> {
        moderation::moderate(&self.write, action).await
    }
}

/// Every other method (see `conduit_store::Uncached`).
#[async_trait]
impl Uncached for ThisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    #[instrument(name = "store.ping", skip_all, fields(db.system = BACKEND))]
    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    #[instrument(name = "store.close", skip_all, fields(db.system = BACKEND))]
    async fn close(&self) {
        dialect::before_close(&self.write).await;
        self.read.close().await;
        self.write.close().await;
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.pools()
    }

    // --- users ---

    #[instrument(name = "store.create_user", skip_all, fields(db.system = BACKEND))]
    async fn create_user(&self, new: &NewUser, outgoing: &Outgoing) -> Result<User, DbError> {
        users::create(&self.write, new, outgoing).await
    }

    #[instrument(name = "store.credentials_by_email", skip_all, fields(db.system = BACKEND))]
    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, DbError> {
        users::credentials(&self.read, email).await
    }

    #[instrument(name = "store.user_id_by_name", skip_all, fields(db.system = BACKEND))]
    async fn user_id_by_name(&self, username: &Username) -> Result<Option<UserId>, DbError> {
        users::id_by_name(&self.read, username).await
    }

    #[instrument(name = "store.list_users", skip_all, fields(db.system = BACKEND))]
    async fn list_users(&self, active: Option<bool>, page: Paging) -> Result<Page<User>, DbError> {
        users::list(&self.read, active, page).await
    }

    #[instrument(name = "store.per_day", skip_all, fields(db.system = BACKEND))]
    async fn per_day(&self, kind: &str, since: &str) -> Result<Vec<(String, i64)>, DbError> {
        users::per_day(&self.read, kind, since).await
    }

    #[instrument(name = "store.find_users", skip_all, fields(db.system = BACKEND))]
    async fn find_users(&self, search: &UserSearch) -> Result<Vec<User>, DbError> {
        users::find(&self.read, search).await
    }

    // --- the account lifecycle by mail ---

    #[instrument(name = "store.mail_account", skip_all, fields(db.system = BACKEND))]
    async fn mail_account(&self, email: &Email, outgoing: &Outgoing) -> Result<Option<UserId>, DbError> {
        account::mail_account(&self.write, email, outgoing).await
    }

    #[instrument(name = "store.queue_mail", skip_all, fields(db.system = BACKEND))]
    async fn queue_mail(&self, mail: &Mail) -> Result<(), DbError> {
        outbox::queue(&self.write, mail).await
    }

    #[instrument(name = "store.account_token", skip_all, fields(db.system = BACKEND))]
    async fn account_token(&self, selector: &str, purpose: TokenPurpose) -> Result<Option<AccountToken>, DbError> {
        // Through the writer: a token mailed a moment ago must be found.
        account::token(&self.read, selector, purpose).await
    }

    #[instrument(name = "store.export_articles", skip_all, fields(db.system = BACKEND))]
    async fn export_articles(&self, author: UserId, before: Option<i64>, limit: i64) -> Result<Vec<Article>, DbError> {
        account::export_articles(&self.read, author, before, limit).await
    }

    #[instrument(name = "store.export_comments", skip_all, fields(db.system = BACKEND))]
    async fn export_comments(
        &self,
        author: UserId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ExportedComment>, DbError> {
        account::export_comments(&self.read, author, after, limit).await
    }

    #[instrument(name = "store.export_favorites", skip_all, fields(db.system = BACKEND))]
    async fn export_favorites(
        &self,
        user: UserId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, DbError> {
        account::export_favorites(&self.read, user, after, limit).await
    }

    #[instrument(name = "store.export_follows", skip_all, fields(db.system = BACKEND))]
    async fn export_follows(&self, user: UserId, after: Option<&str>, limit: i64) -> Result<Vec<String>, DbError> {
        account::export_follows(&self.read, user, after, limit).await
    }

    // --- the outbox ---

    #[instrument(name = "store.claim_mail", skip_all, fields(db.system = BACKEND))]
    async fn claim_mail(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<QueuedMail>, DbError> {
        outbox::claim(&self.write, now, lease_until, limit).await
    }

    #[instrument(name = "store.mail_sent", skip_all, fields(db.system = BACKEND))]
    async fn mail_sent(&self, id: i64, now: i64) -> Result<(), DbError> {
        outbox::sent(&self.write, id, now).await
    }

    #[instrument(name = "store.mail_failed", skip_all, fields(db.system = BACKEND))]
    async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<i64>, forget_body: bool) -> Result<(), DbError> {
        outbox::failed(&self.write, id, error, retry_at, forget_body).await
    }

    #[instrument(name = "store.list_mail", skip_all, fields(db.system = BACKEND))]
    async fn list_mail(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxEntry>, DbError> {
        outbox::list(&self.read, state, limit).await
    }

    #[instrument(name = "store.retry_mail", skip_all, fields(db.system = BACKEND))]
    async fn retry_mail(&self, id: Option<i64>, now: i64, by: Option<UserId>) -> Result<u64, DbError> {
        outbox::retry(&self.write, id, now, by).await
    }

    #[instrument(name = "store.mail_waiting", skip_all, fields(db.system = BACKEND))]
    async fn mail_waiting(&self, most: i64) -> Result<(i64, i64), DbError> {
        outbox::waiting(&self.read, most).await
    }

    #[instrument(name = "store.prune_mail", skip_all, fields(db.system = BACKEND))]
    async fn prune_mail(&self, sent_before: i64, limit: i64) -> Result<u64, DbError> {
        outbox::prune(&self.write, sent_before, limit).await
    }

    // --- profiles ---

    #[instrument(name = "store.profile", skip_all, fields(db.system = BACKEND))]
    async fn profile(&self, username: &Username, viewer: Option<UserId>) -> Result<Option<Profile>, DbError> {
        profiles::get(&self.read, username, viewer).await
    }

    #[instrument(name = "store.follow", skip_all, fields(db.system = BACKEND))]
    async fn follow(&self, follower: UserId, username: &Username) -> Result<Option<Profile>, DbError> {
        profiles::follow(&self.write, follower, username).await?;
        profiles::get(&self.write, username, Some(follower)).await
    }

    #[instrument(name = "store.unfollow", skip_all, fields(db.system = BACKEND))]
    async fn unfollow(&self, follower: UserId, username: &Username) -> Result<Option<Profile>, DbError> {
        profiles::unfollow(&self.write, follower, username).await?;
        profiles::get(&self.write, username, Some(follower)).await
    }

    // --- articles ---

    #[instrument(name = "store.list_articles", skip_all, fields(db.system = BACKEND))]
    async fn list_articles(&self, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
        match &query.search {
            Some(words) => search::page(&self.read, query, words, viewer.map(UserId::get)).await,
            None => listings::list(&self.read, query, viewer).await,
        }
    }

    #[instrument(name = "store.feed", skip_all, fields(db.system = BACKEND))]
    async fn feed(&self, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
        listings::feed(&self.read, viewer, page).await
    }

    #[instrument(name = "store.article_ref", skip_all, fields(db.system = BACKEND))]
    async fn article_ref(&self, slug: &Slug) -> Result<Option<ArticleRef>, DbError> {
        articles::reference(&self.read, slug).await
    }

    // --- comments ---

    #[instrument(name = "store.comments", skip_all, fields(db.system = BACKEND))]
    async fn comments(
        &self,
        article: ArticleId,
        viewer: Option<UserId>,
        page: Paging,
    ) -> Result<Vec<Comment>, DbError> {
        comments::list(&self.read, article, viewer, page).await
    }

    #[instrument(name = "store.create_comment", skip_all, fields(db.system = BACKEND))]
    async fn create_comment(
        &self,
        article: ArticleId,
        author: UserId,
        body: &str,
        held: Option<&str>,
    ) -> Result<Comment, DbError> {
        let id = comments::create(&self.write, article, author, body, held).await?;
        comments::by_id(&self.write, id, Some(author)).await?.ok_or_else(DbError::vanished)
    }

    #[instrument(name = "store.comment_author", skip_all, fields(db.system = BACKEND))]
    async fn comment_author(&self, article: ArticleId, comment: CommentId) -> Result<Option<UserId>, DbError> {
        comments::author(&self.read, article, comment).await
    }

    #[instrument(name = "store.delete_comment", skip_all, fields(db.system = BACKEND))]
    async fn delete_comment(&self, comment: CommentId, author: UserId) -> Result<bool, DbError> {
        comments::delete(&self.write, comment, author).await
    }

    // --- browser sessions ---

    #[instrument(name = "store.session_load", skip_all, fields(db.system = BACKEND))]
    async fn session_load(&self, id: &str, now: i64) -> Result<Option<String>, DbError> {
        sessions::load(&self.read, id, now).await
    }

    #[instrument(name = "store.session_create", skip_all, fields(db.system = BACKEND))]
    async fn session_create(&self, id: &str, data: &str, expires_at: i64) -> Result<bool, DbError> {
        sessions::create(&self.write, id, data, expires_at).await
    }

    #[instrument(name = "store.session_save", skip_all, fields(db.system = BACKEND))]
    async fn session_save(&self, id: &str, data: &str, expires_at: i64) -> Result<(), DbError> {
        sessions::save(&self.write, id, data, expires_at).await
    }

    #[instrument(name = "store.session_delete", skip_all, fields(db.system = BACKEND))]
    async fn session_delete(&self, id: &str) -> Result<(), DbError> {
        sessions::delete(&self.write, id).await
    }

    #[instrument(name = "store.session_delete_expired", skip_all, fields(db.system = BACKEND))]
    async fn session_delete_expired(&self, now: i64) -> Result<u64, DbError> {
        sessions::delete_expired(&self.write, now).await
    }

    // --- demo data in bulk ---

    #[instrument(name = "store.seed_users", skip_all, fields(db.system = BACKEND))]
    async fn seed_users(&self, users: &[NewUser]) -> Result<Vec<UserId>, DbError> {
        seed::users(&self.write, users).await
    }

    #[instrument(name = "store.seed_follows", skip_all, fields(db.system = BACKEND))]
    async fn seed_follows(&self, follows: &[(UserId, UserId)]) -> Result<(), DbError> {
        seed::follows(&self.write, follows).await
    }

    // --- planner statistics ---

    #[instrument(name = "store.analyze", skip_all, fields(db.system = BACKEND))]
    async fn analyze(&self) -> Result<(), DbError> {
        dialect::analyze(&self.write).await
    }

    #[instrument(name = "store.unanalyzed_tables", skip_all, fields(db.system = BACKEND))]
    async fn unanalyzed_tables(&self) -> Result<Vec<String>, DbError> {
        dialect::unanalyzed_tables(&self.read).await
    }

    // --- search index upkeep ---

    #[instrument(name = "store.search_segments", skip_all, fields(db.system = BACKEND))]
    async fn search_segments(&self) -> Result<Option<u64>, DbError> {
        dialect::search_segments(&self.read).await
    }

    #[instrument(name = "store.fill_missing_title_keys", skip_all, fields(db.system = BACKEND))]
    async fn fill_missing_title_keys(&self) -> Result<u64, DbError> {
        articles::fill_missing_title_keys(&self.write).await
    }

    #[instrument(name = "store.merge_search_index", skip_all, fields(db.system = BACKEND))]
    async fn merge_search_index(&self, start: bool) -> Result<(), DbError> {
        dialect::merge_search_index(&self.write, start).await
    }

    // --- scheduled backups ---

    #[instrument(name = "store.claim_backup_slot", skip_all, fields(db.system = BACKEND))]
    async fn claim_backup_slot(&self, slot: i64, by: &str, now: i64) -> Result<bool, DbError> {
        backups::claim_slot(&self.write, slot, by, now).await
    }

    #[instrument(name = "store.admin_emails", skip_all, fields(db.system = BACKEND))]
    async fn admin_emails(&self) -> Result<Vec<String>, DbError> {
        backups::admin_emails(&self.read).await
    }

    #[instrument(name = "store.log_backup", skip_all, fields(db.system = BACKEND))]
    async fn log_backup(&self, by: UserId, action: BackupAction, name: &str) -> Result<(), DbError> {
        backups::log(&self.write, by, action, name).await
    }

    // --- tags ---

    #[instrument(name = "store.tags_version", skip_all, fields(db.system = BACKEND))]
    async fn tags_version(&self) -> Result<i64, DbError> {
        articles::tags_version(&self.read).await
    }

    // --- blocks ---

    #[instrument(name = "store.blocks", skip_all, fields(db.system = BACKEND))]
    async fn blocks(&self, blocker: UserId, blocked: UserId) -> Result<bool, DbError> {
        profiles::blocks(&self.read, blocker, blocked).await
    }

    #[instrument(name = "store.blocked_users", skip_all, fields(db.system = BACKEND))]
    async fn blocked_users(
        &self,
        blocker: UserId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<BlockedUser>, DbError> {
        profiles::blocked(&self.read, blocker, after, limit).await
    }

    // --- moderation ---

    #[instrument(name = "store.report", skip_all, fields(db.system = BACKEND))]
    async fn report(&self, new: &NewReport) -> Result<Option<Report>, DbError> {
        moderation::report(&self.write, new).await
    }

    #[instrument(name = "store.reports_of", skip_all, fields(db.system = BACKEND))]
    async fn reports_of(&self, reporter: UserId, before: Option<i64>, limit: i64) -> Result<Vec<Report>, DbError> {
        moderation::reports_of(&self.read, reporter, before, limit).await
    }

    #[instrument(name = "store.report_queue", skip_all, fields(db.system = BACKEND))]
    async fn report_queue(&self, after: Option<i64>, limit: i64) -> Result<Vec<QueueEntry>, DbError> {
        moderation::queue(&self.read, after, limit).await
    }

    #[instrument(name = "store.moderation_log", skip_all, fields(db.system = BACKEND))]
    async fn moderation_log(&self, query: &LogQuery) -> Result<Vec<LogEntry>, DbError> {
        moderation::log(&self.read, query).await
    }

    #[instrument(name = "store.notifications", skip_all, fields(db.system = BACKEND))]
    async fn notifications(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<Notification>, Option<i64>), DbError> {
        notifications::page(&self.read, user, before, limit).await
    }

    #[instrument(name = "store.unread_notifications", skip_all, fields(db.system = BACKEND))]
    async fn unread_notifications(&self, user: UserId) -> Result<i64, DbError> {
        notifications::unread(&self.read, user).await
    }

    #[instrument(name = "store.mark_notification_read", skip_all, fields(db.system = BACKEND))]
    async fn mark_notification_read(&self, user: UserId, id: i64) -> Result<bool, DbError> {
        notifications::mark_read(&self.write, user, id).await
    }

    #[instrument(name = "store.mark_notifications_read", skip_all, fields(db.system = BACKEND))]
    async fn mark_notifications_read(&self, user: UserId, through: Option<i64>) -> Result<u64, DbError> {
        notifications::mark_all_read(&self.write, user, through).await
    }

    #[instrument(name = "store.notifications_after", skip_all, fields(db.system = BACKEND))]
    async fn notifications_after(&self, after: i64, limit: i64) -> Result<Vec<Tailed>, DbError> {
        notifications::tail(&self.read, after, limit).await
    }

    #[instrument(name = "store.notifications_replay", skip_all, fields(db.system = BACKEND))]
    async fn notifications_replay(
        &self,
        user: UserId,
        after: i64,
        through: i64,
        limit: i64,
    ) -> Result<Option<Vec<Tailed>>, DbError> {
        notifications::replay(&self.read, user, after, through, limit).await
    }

    #[instrument(name = "store.follower_ids", skip_all, fields(db.system = BACKEND))]
    async fn follower_ids(&self, author: UserId) -> Result<Vec<UserId>, DbError> {
        notifications::followers(&self.read, author).await
    }

    #[instrument(name = "store.transactions", skip_all, fields(db.system = BACKEND))]
    async fn transactions(&self, bound: Bound) -> Result<Option<i64>, DbError> {
        // Taking a new transaction id is a write.
        let pool = if bound == Bound::Newest { &self.write } else { &self.read };
        dialect::transactions(pool, bound).await
    }

    #[instrument(name = "store.newest_notification", skip_all, fields(db.system = BACKEND))]
    async fn newest_notification(&self) -> Result<i64, DbError> {
        notifications::newest(&self.read).await
    }

    #[instrument(name = "store.notifications_resume", skip_all, fields(db.system = BACKEND))]
    async fn notifications_resume(&self, user: UserId, last: i64) -> Result<Resume, DbError> {
        notifications::resume(&self.read, user, last).await
    }

    #[instrument(name = "store.prune_notifications", skip_all, fields(db.system = BACKEND))]
    async fn prune_notifications(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, DbError> {
        notifications::prune(&self.write, before, 10_000).await
    }
}
