//! [`Cached`]: any [`Store`] with this process's [`Cache`] in front of the reads every request
//! makes (the caller's user, an anonymous article view, the tag list). A [`ChangeFeed`], one
//! per backend, tells the cache what changed in the database, whoever changed it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use conduit_domain::model::{ArticleId, UserId};
use conduit_domain::{Article, Slug, User, Username};

use crate::cache::{Acks, Cache};
use crate::*;

/// The longest article body the article cache keeps (see [`Cached`]'s `article`).
const CACHED_BODY_MAX: usize = 8 * 1024;

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

    /// The store behind the cache, whole: its cached methods too, read from the database.
    pub fn inner(&self) -> &S {
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

/// Only the methods the cache answers or must hear of; every other one goes straight to the
/// store behind it, through [`Store::uncached`].
#[async_trait]
impl<S: Store> Store for Cached<S> {
    fn uncached(&self) -> &dyn Uncached {
        self.store.uncached()
    }

    // --- users: reads by id cached; every write waits until every instance dropped the row ---

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        self.feed.catch_up(&self.cache);
        self.cache.users.get_or_read(&id, self.store.user_by_id(id)).await
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

    // --- the account lifecycle: changes to users wait, as above ---

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

    // --- articles: the anonymous view of one article and the tag list are cached ---

    async fn article(&self, slug: &Slug, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
        // Only the anonymous view is cached: it is the same for every reader.
        if viewer.is_some() {
            return self.store.article(slug, viewer).await;
        }
        self.feed.catch_up(&self.cache);
        // A long article is not kept: the map holds up to 10,000 entries, and 10,000 bodies of
        // 1 MiB would be 10 GB. At most 8 KiB each, it is at most 80 MB, and a long
        // article's read costs little beside writing its body out.
        let short = |article: &Article| article.body.as_ref().is_none_or(|body| body.len() <= CACHED_BODY_MAX);
        self.cache.articles.get_or_read_keeping(slug.as_str(), self.store.article(slug, None), short).await
    }

    async fn create_article(
        &self,
        author: UserId,
        slug: &Slug,
        new: &NewArticle,
        held: Option<&str>,
    ) -> Result<Article, DbError> {
        let article = self.store.create_article(author, slug, new, held).await?;
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

    // --- demo data and the tag list ---

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
            let version = self.store.uncached().tags_version().await?;
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

    // --- blocks: the blocker's row changes; waits as a user change does ---

    async fn block(&self, blocker: UserId, username: &Username) -> Result<bool, DbError> {
        let acks = self.cache.before_change();
        let blocked = self.store.block(blocker, username).await?;
        if blocked {
            self.forget_user(Some(blocker), acks).await;
        }
        Ok(blocked)
    }

    async fn unblock(&self, blocker: UserId, username: &Username) -> Result<bool, DbError> {
        let acks = self.cache.before_change();
        let unblocked = self.store.unblock(blocker, username).await?;
        if unblocked {
            self.forget_user(Some(blocker), acks).await;
        }
        Ok(unblocked)
    }

    // --- moderation: waits, as a user change does, until every instance dropped what changed ---

    async fn moderate(
        &self,
        action: &crate::moderation::ModerationAction,
    ) -> Result<crate::moderation::Moderated, DbError> {
        let acks = self.cache.before_change();
        let moderated = self.store.moderate(action).await?;
        if let crate::moderation::Moderated::Done { user: Some(user), .. } = &moderated {
            // The store touched this user's row in the action's transaction: every instance
            // drops them and every article view (which shows its author), and acknowledges.
            self.forget_user(Some(*user), acks).await;
            self.cache.article_changed(None);
        }
        Ok(moderated)
    }
}

/// A `Cached` is also its store's [`Uncached`] part, as a `dyn Store` is (see [`Store`]).
impl<S: Store> std::ops::Deref for Cached<S> {
    type Target = dyn Uncached;

    fn deref(&self) -> &(dyn Uncached + 'static) {
        self.store.uncached()
    }
}
