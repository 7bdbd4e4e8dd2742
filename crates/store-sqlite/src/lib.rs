//! Conduit on SQLite: the zero-configuration default.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections fight for
//! the write lock (and fail with `SQLITE_BUSY` when a read transaction tries to upgrade), all
//! writes go through a pool of exactly one connection, while reads use a pool of several.
//! WAL mode lets those readers run alongside the writer.

mod articles;
mod comments;
mod connect;
mod profiles;
pub mod testing;
mod users;

use async_trait::async_trait;
use conduit_domain::model::{ArticleId, CommentId, UserId};
use conduit_domain::{Article, Comment, Profile, User};
use conduit_store::*;
use sqlx::SqlitePool;

pub use connect::ConnectError;

/// The embedded migrations, also run by `conduit migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    async fn create_user(&self, new: &NewUser) -> Result<User, DbError> {
        users::create(&self.write, new).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, DbError> {
        users::by_id(&self.read, id).await
    }

    async fn credentials_by_email(&self, email: &str) -> Result<Option<Credentials>, DbError> {
        users::credentials(&self.read, email).await
    }

    async fn update_user(&self, id: UserId, changes: &UserChanges) -> Result<Option<User>, DbError> {
        users::update(&self.write, id, changes).await
    }

    async fn profile(&self, username: &str, viewer: Option<UserId>) -> Result<Option<Profile>, DbError> {
        profiles::get(&self.read, username, viewer).await
    }

    async fn follow(&self, follower: UserId, username: &str) -> Result<Option<Profile>, DbError> {
        profiles::follow(&self.write, follower, username).await?;
        profiles::get(&self.write, username, Some(follower)).await
    }

    async fn unfollow(&self, follower: UserId, username: &str) -> Result<Option<Profile>, DbError> {
        profiles::unfollow(&self.write, follower, username).await?;
        profiles::get(&self.write, username, Some(follower)).await
    }

    async fn list_articles(&self, query: &ArticleQuery, viewer: Option<UserId>) -> Result<Page<Article>, DbError> {
        articles::list(&self.read, query, viewer).await
    }

    async fn feed(&self, viewer: UserId, page: Paging) -> Result<Page<Article>, DbError> {
        articles::feed(&self.read, viewer, page).await
    }

    async fn article(&self, slug: &str, viewer: Option<UserId>) -> Result<Option<Article>, DbError> {
        articles::by_slug(&self.read, slug, viewer).await
    }

    async fn article_ref(&self, slug: &str) -> Result<Option<ArticleRef>, DbError> {
        articles::reference(&self.read, slug).await
    }

    async fn create_article(&self, author: UserId, slug: &str, new: &NewArticle) -> Result<Article, DbError> {
        articles::create(&self.write, author, slug, new).await?;
        // Read back through the writer: it has certainly seen its own commit.
        articles::by_slug(&self.write, slug, Some(author)).await?.ok_or_else(vanished)
    }

    async fn update_article(
        &self,
        article: ArticleId,
        author: UserId,
        slug: Option<&str>,
        changes: &ArticleChanges,
    ) -> Result<Option<Article>, DbError> {
        match articles::update(&self.write, article, author, slug, changes).await? {
            Some(slug) => articles::by_slug(&self.write, &slug, Some(author)).await,
            None => Ok(None),
        }
    }

    async fn delete_article(&self, article: ArticleId, author: UserId) -> Result<bool, DbError> {
        articles::delete(&self.write, article, author).await
    }

    async fn favorite(&self, user: UserId, slug: &str) -> Result<Option<Article>, DbError> {
        articles::favorite(&self.write, user, slug).await?;
        articles::by_slug(&self.write, slug, Some(user)).await
    }

    async fn unfavorite(&self, user: UserId, slug: &str) -> Result<Option<Article>, DbError> {
        articles::unfavorite(&self.write, user, slug).await?;
        articles::by_slug(&self.write, slug, Some(user)).await
    }

    async fn comments(&self, article: ArticleId, viewer: Option<UserId>) -> Result<Vec<Comment>, DbError> {
        comments::list(&self.read, article, viewer).await
    }

    async fn create_comment(&self, article: ArticleId, author: UserId, body: &str) -> Result<Comment, DbError> {
        let id = comments::create(&self.write, article, author, body).await?;
        comments::by_id(&self.write, id, Some(author)).await?.ok_or_else(vanished)
    }

    async fn comment_author(&self, article: ArticleId, comment: CommentId) -> Result<Option<UserId>, DbError> {
        comments::author(&self.read, article, comment).await
    }

    async fn delete_comment(&self, comment: CommentId, author: UserId) -> Result<bool, DbError> {
        comments::delete(&self.write, comment, author).await
    }

    async fn tags(&self) -> Result<Vec<String>, DbError> {
        articles::tags(&self.read).await
    }
}

/// A row written a moment ago is gone: only a concurrent delete can do that.
fn vanished() -> DbError {
    DbError::Other("row deleted concurrently before it could be read back".into())
}
