//! [`Cached`]: any [`Store`] with this process's [`Cache`] in front of the reads every request
//! makes (the caller's user, an anonymous article view, the tag list). A [`ChangeFeed`], one
//! per backend, tells the cache what changed in the database, whoever changed it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use conduit_domain::model::{ArticleId, CommentId, UserId};
use conduit_domain::{Article, Comment, Email, Profile, Slug, User, Username};

use crate::cache::{Acks, Cache};
use crate::*;

/// How a backend hears of changes committed by any process. SQLite looks (a commit moves its
/// WAL index header); PostgreSQL is told (triggers `NOTIFY`, and each instance acknowledges
/// user changes so a revocation holds everywhere before its request returns).
#[async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Starts telling `cache` of changes, for as long as it lives. Waits at most `wait` until
    /// it does; true once it does (until then the cache is bypassed).
    async fn start(&self, cache: Weak<Cache>, wait: Duration) -> bool;

    /// Called before each use of the cache: a feed that learns of changes by looking, rather
    /// than by being told, looks here.
    fn catch_up(&self, _cache: &Cache) {}

    /// Whether it tells of every new article too (not only of changes to existing ones): only
    /// then is the tag list cached, so it is never stale.
    fn tells_of_new_articles(&self) -> bool {
        false
    }

    /// How many instances (this one among them) acknowledge each user change, so a writer
    /// knows how many to wait for. 0: nobody to wait for.
    async fn listeners(&self) -> usize {
        0
    }
}

/// A store with the process's cache in front of it. The server holds a `dyn Store` and does
/// not know whether it is cached.
pub struct Cached<S> {
    store: S,
    cache: Arc<Cache>,
    feed: Box<dyn ChangeFeed>,
}

impl<S: Store> Cached<S> {
    /// Wraps `store` and starts `feed`, waiting up to `wait` for it to listen.
    pub async fn start(store: S, feed: impl ChangeFeed, wait: Duration) -> Self {
        let cache = Arc::new(Cache::default());
        if !feed.start(Arc::downgrade(&cache), wait).await {
            tracing::warn!("not yet hearing of changes: nothing is cached until then");
        }
        Self { store, cache, feed: Box::new(feed) }
    }

    /// The store behind the cache.
    pub fn uncached(&self) -> &S {
        &self.store
    }

    /// Whether the cache is in use (its feed is listening).
    pub fn is_caching(&self) -> bool {
        self.cache.is_listening()
    }

    /// Whether `user_by_id(id)` would now be answered from memory (for tests).
    pub fn serves_cached_user(&self, id: UserId) -> bool {
        self.feed.catch_up(&self.cache);
        self.cache.users.get(&id).is_some()
    }

    /// After a committed change to the users table: see [`Cache::forget`].
    async fn forget_user(&self, id: Option<UserId>, acks: Acks) {
        let listeners = if self.cache.is_listening() { self.feed.listeners().await } else { 0 };
        self.cache.forget(id, acks, listeners).await;
    }
}

#[async_trait]
impl<S: Store> Store for Cached<S> {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }

    async fn ping(&self) -> Result<(), DbError> {
        self.store.ping().await
    }

    async fn close(&self) {
        self.store.close().await
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.store.pool_stats()
    }

    // --- users: reads by id cached; every write waits until every instance dropped the row ---

    async fn create_user(&self, new: &NewUser, outgoing: &Outgoing) -> Result<User, DbError> {
        self.store.create_user(new, outgoing).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        self.feed.catch_up(&self.cache);
        self.cache.users.get_or_read(&id, self.store.user_by_id(id)).await
    }

    async fn credentials_by_email(&self, email: &Email) -> Result<Option<Credentials>, DbError> {
        self.store.credentials_by_email(email).await
    }

    async fn set_password_hash(&self, username: &Username, password_hash: &str) -> Result<bool, DbError> {
        let acks = self.cache.before_change();
        let changed = self.store.set_password_hash(username, password_hash).await?;
        if changed {
            // Known here by name only; rare (an operator's command).
            self.forget_user(None, acks).await;
        }
        Ok(changed)
    }

    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError> {
        let acks = self.cache.before_change();
        let user = self.store.update_user(id, changes).await?;
        if user.is_some() {
            self.forget_user(Some(id), acks).await;
        }
        Ok(user)
    }

    async fn list_users(&self, active: Option<bool>, page: Paging) -> Result<Page<User>, DbError> {
        self.store.list_users(active, page).await
    }

    async fn set_account(&self, username: &Username, changes: &AccountChanges) -> Result<Option<User>, DbError> {
        let acks = self.cache.before_change();
        let user = self.store.set_account(username, changes).await?;
        if let Some(user) = &user {
            self.forget_user(Some(user.id), acks).await;
        }
        Ok(user)
    }

    async fn end_session_tokens(&self, id: UserId, session: &str, until: i64) -> Result<bool, DbError> {
        let acks = self.cache.before_change();
        let ended = self.store.end_session_tokens(id, session, until).await?;
        if ended {
            self.forget_user(Some(id), acks).await;
        }
        Ok(ended)
    }

    // --- the account lifecycle: changes to users wait, as above; the outbox is not cached ---

    async fn mail_account(&self, email: &Email, outgoing: &Outgoing) -> Result<Option<UserId>, DbError> {
        self.store.mail_account(email, outgoing).await
    }

    async fn account_token(&self, selector: &str, purpose: TokenPurpose) -> Result<Option<AccountToken>, DbError> {
        self.store.account_token(selector, purpose).await
    }

    async fn redeem_token(
        &self,
        selector: &str,
        verifier_hash: &str,
        now: i64,
        redeem: &Redeem,
    ) -> Result<Option<User>, DbError> {
        let acks = self.cache.before_change();
        let user = self.store.redeem_token(selector, verifier_hash, now, redeem).await?;
        if let Some(user) = &user {
            self.forget_user(Some(user.id), acks).await;
        }
        Ok(user)
    }

    async fn delete_user(
        &self,
        id: UserId,
        expected_version: i64,
        content: DeletedContent,
        outgoing: &Outgoing,
    ) -> Result<bool, DbError> {
        let acks = self.cache.before_change();
        let deleted = self.store.delete_user(id, expected_version, content, outgoing).await?;
        if deleted {
            // Every instance drops the user before this returns: their tokens stop working
            // everywhere at once. Their articles went or changed author.
            self.forget_user(Some(id), acks).await;
            self.cache.article_changed(None);
        }
        Ok(deleted)
    }

    async fn export_user(&self, id: UserId) -> Result<Option<UserExport>, DbError> {
        self.store.export_user(id).await
    }

    async fn claim_mail(&self, now: i64, lease_until: i64, limit: i64) -> Result<Vec<QueuedMail>, DbError> {
        self.store.claim_mail(now, lease_until, limit).await
    }

    async fn mail_sent(&self, id: i64, now: i64) -> Result<(), DbError> {
        self.store.mail_sent(id, now).await
    }

    async fn mail_failed(&self, id: i64, error: &str, retry_at: Option<i64>) -> Result<(), DbError> {
        self.store.mail_failed(id, error, retry_at).await
    }

    async fn list_mail(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxEntry>, DbError> {
        self.store.list_mail(state, limit).await
    }

    async fn retry_mail(&self, id: Option<i64>, now: i64) -> Result<u64, DbError> {
        self.store.retry_mail(id, now).await
    }

    // --- profiles: not cached (they depend on the viewer) ---

    async fn profile(&self, username: &Username, viewer: Option<UserId>) -> Result<Option<Profile>, DbError> {
        self.store.profile(username, viewer).await
    }

    async fn follow(&self, follower: UserId, username: &Username) -> Result<Option<Profile>, DbError> {
        self.store.follow(follower, username).await
    }

    async fn unfollow(&self, follower: UserId, username: &Username) -> Result<Option<Profile>, DbError> {
        self.store.unfollow(follower, username).await
    }

    // --- articles: the anonymous view of one article and the tag list are cached ---

    async fn list_articles(&self, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
        self.store.list_articles(query, viewer).await
    }

    async fn feed(&self, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
        self.store.feed(viewer, page).await
    }

    async fn article(&self, slug: &Slug, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
        // Only the anonymous view is cached: it is the same for every reader.
        if viewer.is_some() {
            return self.store.article(slug, viewer).await;
        }
        self.feed.catch_up(&self.cache);
        self.cache.articles.get_or_read(slug.as_str(), self.store.article(slug, None)).await
    }

    async fn article_ref(&self, slug: &Slug) -> Result<Option<ArticleRef>, DbError> {
        self.store.article_ref(slug).await
    }

    async fn create_article(&self, author: UserId, slug: &Slug, new: &NewArticle) -> Result<Article, DbError> {
        let article = self.store.create_article(author, slug, new).await?;
        self.cache.tags_changed();
        Ok(article)
    }

    async fn update_article(
        &self,
        article: ArticleId,
        author: UserId,
        expected_slug: &Slug,
        slug: Option<&Slug>,
        changes: &ArticleChanges,
    ) -> Result<Option<Article>, DbError> {
        let updated = self.store.update_article(article, author, expected_slug, slug, changes).await?;
        if updated.is_some() {
            self.cache.article_changed(Some(expected_slug.as_str()));
        }
        Ok(updated)
    }

    async fn delete_article(&self, article: ArticleId, author: UserId) -> Result<bool, DbError> {
        let deleted = self.store.delete_article(article, author).await?;
        if deleted {
            // Known here by id only; deletions are rare.
            self.cache.article_changed(None);
        }
        Ok(deleted)
    }

    async fn favorite(&self, user: UserId, slug: &Slug) -> Result<Option<Article>, DbError> {
        let article = self.store.favorite(user, slug).await?;
        self.cache.articles.invalidate(Some(slug.as_str()));
        Ok(article)
    }

    async fn unfavorite(&self, user: UserId, slug: &Slug) -> Result<Option<Article>, DbError> {
        let article = self.store.unfavorite(user, slug).await?;
        self.cache.articles.invalidate(Some(slug.as_str()));
        Ok(article)
    }

    // --- comments and sessions: not cached ---

    async fn comments(
        &self,
        article: ArticleId,
        viewer: Option<UserId>,
        page: Paging,
    ) -> Result<Vec<Comment>, DbError> {
        self.store.comments(article, viewer, page).await
    }

    async fn create_comment(&self, article: ArticleId, author: UserId, body: &str) -> Result<Comment, DbError> {
        self.store.create_comment(article, author, body).await
    }

    async fn comment_author(&self, article: ArticleId, comment: CommentId) -> Result<Option<UserId>, DbError> {
        self.store.comment_author(article, comment).await
    }

    async fn delete_comment(&self, comment: CommentId, author: UserId) -> Result<bool, DbError> {
        self.store.delete_comment(comment, author).await
    }

    async fn session_load(&self, id: &str, now: i64) -> Result<Option<String>, DbError> {
        self.store.session_load(id, now).await
    }

    async fn session_create(&self, id: &str, data: &str, expires_at: i64) -> Result<bool, DbError> {
        self.store.session_create(id, data, expires_at).await
    }

    async fn session_save(&self, id: &str, data: &str, expires_at: i64) -> Result<(), DbError> {
        self.store.session_save(id, data, expires_at).await
    }

    async fn session_delete(&self, id: &str) -> Result<(), DbError> {
        self.store.session_delete(id).await
    }

    async fn session_delete_expired(&self, now: i64) -> Result<u64, DbError> {
        self.store.session_delete_expired(now).await
    }

    async fn tags_version(&self) -> Result<i64, DbError> {
        self.store.tags_version().await
    }

    async fn seed_users(&self, users: &[NewUser]) -> Result<Vec<UserId>, DbError> {
        self.store.seed_users(users).await
    }

    async fn seed_follows(&self, follows: &[(UserId, UserId)]) -> Result<(), DbError> {
        self.store.seed_follows(follows).await
    }

    async fn seed_articles(&self, articles: &[SeedArticle]) -> Result<(), DbError> {
        self.store.seed_articles(articles).await?;
        // Tags and counts changed wholesale.
        self.cache.article_changed(None);
        Ok(())
    }

    async fn tags(&self) -> Result<Vec<String>, DbError> {
        if !self.feed.tells_of_new_articles() {
            // Nobody tells of new articles: check the kept list against the tags' version, one
            // small read, and read the list again when it moved. The version is read first, so
            // a list kept with it is at least as new as it.
            let version = self.store.tags_version().await?;
            if let Some((kept, tags)) = self.cache.versioned_tags.get(&())
                && kept == version
            {
                return Ok(tags);
            }
            let tags = self.store.tags().await?;
            self.cache.versioned_tags.keep(self.cache.versioned_tags.ticket(), (), (version, tags.clone()));
            return Ok(tags);
        }
        self.feed.catch_up(&self.cache);
        let read = async { self.store.tags().await.map(Some) };
        Ok(self.cache.tags.get_or_read(&(), read).await?.unwrap_or_default())
    }
}
