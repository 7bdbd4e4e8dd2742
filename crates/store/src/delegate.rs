/// Implements [`Store`](crate::Store) for a backend whose crate has modules `users`, `profiles`,
/// `articles` and `comments` with the same functions, taking `&self.$read` or `&self.$write`,
/// a `cache: Cache` field, `async fn users_changed(&self, Option<UserId>, Acks)` to call after a
/// committed write to the users table (see [`Cache::forget`](crate::Cache::forget)), and
/// `fn refresh_cache(&self)`, called before each use of the cache, for a backend that learns of
/// changes by looking rather than by being told.
/// Both backends route each call the same way; only their SQL differs, so the routing is
/// written once, here.
#[macro_export]
macro_rules! delegate_store {
    ($store:ty, backend = $backend:literal, read = $read:ident, write = $write:ident) => {
        #[$crate::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            #[$crate::__tracing::instrument(name = "store.ping", skip_all, fields(db.system = $backend))]
            async fn ping(&self) -> Result<(), $crate::DbError> {
                $crate::__sqlx::query("SELECT 1").execute(&self.$read).await?;
                Ok(())
            }

            fn pool_stats(&self) -> Vec<$crate::PoolStats> {
                self.pools()
            }

            #[$crate::__tracing::instrument(name = "store.close", skip_all, fields(db.system = $backend))]
            async fn close(&self) {
                self.$write.close().await;
                self.$read.close().await;
            }

            #[$crate::__tracing::instrument(name = "store.create_user", skip_all, fields(db.system = $backend))]
            async fn create_user(&self, new: &$crate::NewUser) -> Result<$crate::__domain::User, $crate::DbError> {
                users::create(&self.$write, new).await
            }

            #[$crate::__tracing::instrument(name = "store.user_by_id", skip_all, fields(db.system = $backend))]
            async fn user_by_id(
                &self,
                id: $crate::__domain::model::UserId,
            ) -> Result<Option<$crate::__domain::User>, $crate::DbError> {
                self.refresh_cache();
                self.cache.users.get_or_read(&id, users::by_id(&self.$read, id)).await
            }

            #[$crate::__tracing::instrument(name = "store.credentials_by_email", skip_all, fields(db.system = $backend))]
            async fn credentials_by_email(&self, email: &str) -> Result<Option<$crate::Credentials>, $crate::DbError> {
                users::credentials(&self.$read, email).await
            }

            #[$crate::__tracing::instrument(name = "store.set_password_hash", skip_all, fields(db.system = $backend))]
            async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<bool, $crate::DbError> {
                let notices = self.cache.before_change();
                let changed = users::set_password_hash(&self.$write, username, password_hash).await?;
                if changed {
                    self.users_changed(None, notices).await;
                }
                Ok(changed)
            }

            #[$crate::__tracing::instrument(name = "store.update_user", skip_all, fields(db.system = $backend))]
            async fn update_user(
                &self,
                id: $crate::__domain::model::UserId,
                changes: &$crate::UserChanges,
            ) -> Result<Option<$crate::__domain::User>, $crate::DbError> {
                let notices = self.cache.before_change();
                let user = users::update(&self.$write, id, changes).await?;
                if user.is_some() {
                    self.users_changed(Some(id), notices).await;
                }
                Ok(user)
            }

            #[$crate::__tracing::instrument(name = "store.list_users", skip_all, fields(db.system = $backend))]
            async fn list_users(
                &self,
                active: Option<bool>,
                page: $crate::Paging,
            ) -> Result<$crate::Page<$crate::__domain::User>, $crate::DbError> {
                users::list(&self.$read, active, page).await
            }

            #[$crate::__tracing::instrument(name = "store.set_account", skip_all, fields(db.system = $backend))]
            async fn set_account(
                &self,
                username: &str,
                changes: &$crate::AccountChanges,
            ) -> Result<Option<$crate::__domain::User>, $crate::DbError> {
                let notices = self.cache.before_change();
                let user = users::set_account(&self.$write, username, changes).await?;
                if let Some(user) = &user {
                    self.users_changed(Some(user.id), notices).await;
                }
                Ok(user)
            }

            #[$crate::__tracing::instrument(name = "store.end_session_tokens", skip_all, fields(db.system = $backend))]
            async fn end_session_tokens(
                &self,
                id: $crate::__domain::model::UserId,
                session: &str,
                until: i64,
            ) -> Result<bool, $crate::DbError> {
                let notices = self.cache.before_change();
                let ended = users::end_session_tokens(&self.$write, id, session, until).await?;
                if ended {
                    self.users_changed(Some(id), notices).await;
                }
                Ok(ended)
            }

            #[$crate::__tracing::instrument(name = "store.profile", skip_all, fields(db.system = $backend))]
            async fn profile(
                &self,
                username: &str,
                viewer: Option<$crate::__domain::model::UserId>,
            ) -> Result<Option<$crate::__domain::Profile>, $crate::DbError> {
                profiles::get(&self.$read, username, viewer).await
            }

            #[$crate::__tracing::instrument(name = "store.follow", skip_all, fields(db.system = $backend))]
            async fn follow(
                &self,
                follower: $crate::__domain::model::UserId,
                username: &str,
            ) -> Result<Option<$crate::__domain::Profile>, $crate::DbError> {
                profiles::follow(&self.$write, follower, username).await?;
                profiles::get(&self.$write, username, Some(follower)).await
            }

            #[$crate::__tracing::instrument(name = "store.unfollow", skip_all, fields(db.system = $backend))]
            async fn unfollow(
                &self,
                follower: $crate::__domain::model::UserId,
                username: &str,
            ) -> Result<Option<$crate::__domain::Profile>, $crate::DbError> {
                profiles::unfollow(&self.$write, follower, username).await?;
                profiles::get(&self.$write, username, Some(follower)).await
            }

            #[$crate::__tracing::instrument(name = "store.list_articles", skip_all, fields(db.system = $backend))]
            async fn list_articles(
                &self,
                query: &$crate::ArticleQuery,
                viewer: Option<$crate::__domain::model::UserId>,
            ) -> Result<$crate::Page<$crate::__domain::Article>, $crate::DbError> {
                articles::list(&self.$read, query, viewer).await
            }

            #[$crate::__tracing::instrument(name = "store.feed", skip_all, fields(db.system = $backend))]
            async fn feed(
                &self,
                viewer: $crate::__domain::model::UserId,
                page: $crate::Paging,
            ) -> Result<$crate::Page<$crate::__domain::Article>, $crate::DbError> {
                articles::feed(&self.$read, viewer, page).await
            }

            #[$crate::__tracing::instrument(name = "store.article", skip_all, fields(db.system = $backend))]
            async fn article(
                &self,
                slug: &str,
                viewer: Option<$crate::__domain::model::UserId>,
            ) -> Result<Option<$crate::__domain::Article>, $crate::DbError> {
                // Only the anonymous view is cached: it is the same for every reader.
                if viewer.is_some() {
                    return articles::by_slug(&self.$read, slug, viewer).await;
                }
                self.refresh_cache();
                self.cache.articles.get_or_read(slug, articles::by_slug(&self.$read, slug, None)).await
            }

            #[$crate::__tracing::instrument(name = "store.article_ref", skip_all, fields(db.system = $backend))]
            async fn article_ref(&self, slug: &str) -> Result<Option<$crate::ArticleRef>, $crate::DbError> {
                articles::reference(&self.$read, slug).await
            }

            #[$crate::__tracing::instrument(name = "store.create_article", skip_all, fields(db.system = $backend))]
            async fn create_article(
                &self,
                author: $crate::__domain::model::UserId,
                slug: &str,
                new: &$crate::NewArticle,
            ) -> Result<$crate::__domain::Article, $crate::DbError> {
                articles::create(&self.$write, author, slug, new).await?;
                // Read back through the writer: it has certainly seen its own commit.
                articles::by_slug(&self.$write, slug, Some(author)).await?.ok_or_else($crate::DbError::vanished)
            }

            #[$crate::__tracing::instrument(name = "store.update_article", skip_all, fields(db.system = $backend))]
            async fn update_article(
                &self,
                article: $crate::__domain::model::ArticleId,
                author: $crate::__domain::model::UserId,
                expected_slug: &str,
                slug: Option<&str>,
                changes: &$crate::ArticleChanges,
            ) -> Result<Option<$crate::__domain::Article>, $crate::DbError> {
                match articles::update(&self.$write, article, author, expected_slug, slug, changes).await? {
                    Some(slug) => {
                        self.cache.articles.heard(Some(expected_slug));
                        articles::by_slug(&self.$write, &slug, Some(author)).await
                    }
                    None => Ok(None),
                }
            }

            #[$crate::__tracing::instrument(name = "store.delete_article", skip_all, fields(db.system = $backend))]
            async fn delete_article(
                &self,
                article: $crate::__domain::model::ArticleId,
                author: $crate::__domain::model::UserId,
            ) -> Result<bool, $crate::DbError> {
                let deleted = articles::delete(&self.$write, article, author).await?;
                if deleted {
                    // Known here by id only; deletions are rare.
                    self.cache.articles.heard(None::<&str>);
                }
                Ok(deleted)
            }

            #[$crate::__tracing::instrument(name = "store.favorite", skip_all, fields(db.system = $backend))]
            async fn favorite(
                &self,
                user: $crate::__domain::model::UserId,
                slug: &str,
            ) -> Result<Option<$crate::__domain::Article>, $crate::DbError> {
                articles::favorite(&self.$write, user, slug).await?;
                self.cache.articles.heard(Some(slug));
                articles::by_slug(&self.$write, slug, Some(user)).await
            }

            #[$crate::__tracing::instrument(name = "store.unfavorite", skip_all, fields(db.system = $backend))]
            async fn unfavorite(
                &self,
                user: $crate::__domain::model::UserId,
                slug: &str,
            ) -> Result<Option<$crate::__domain::Article>, $crate::DbError> {
                articles::unfavorite(&self.$write, user, slug).await?;
                self.cache.articles.heard(Some(slug));
                articles::by_slug(&self.$write, slug, Some(user)).await
            }

            #[$crate::__tracing::instrument(name = "store.comments", skip_all, fields(db.system = $backend))]
            async fn comments(
                &self,
                article: $crate::__domain::model::ArticleId,
                viewer: Option<$crate::__domain::model::UserId>,
            ) -> Result<Vec<$crate::__domain::Comment>, $crate::DbError> {
                comments::list(&self.$read, article, viewer).await
            }

            #[$crate::__tracing::instrument(name = "store.create_comment", skip_all, fields(db.system = $backend))]
            async fn create_comment(
                &self,
                article: $crate::__domain::model::ArticleId,
                author: $crate::__domain::model::UserId,
                body: &str,
            ) -> Result<$crate::__domain::Comment, $crate::DbError> {
                let id = comments::create(&self.$write, article, author, body).await?;
                comments::by_id(&self.$write, id, Some(author)).await?.ok_or_else($crate::DbError::vanished)
            }

            #[$crate::__tracing::instrument(name = "store.comment_author", skip_all, fields(db.system = $backend))]
            async fn comment_author(
                &self,
                article: $crate::__domain::model::ArticleId,
                comment: $crate::__domain::model::CommentId,
            ) -> Result<Option<$crate::__domain::model::UserId>, $crate::DbError> {
                comments::author(&self.$read, article, comment).await
            }

            #[$crate::__tracing::instrument(name = "store.delete_comment", skip_all, fields(db.system = $backend))]
            async fn delete_comment(
                &self,
                comment: $crate::__domain::model::CommentId,
                author: $crate::__domain::model::UserId,
            ) -> Result<bool, $crate::DbError> {
                comments::delete(&self.$write, comment, author).await
            }

            #[$crate::__tracing::instrument(name = "store.session_load", skip_all, fields(db.system = $backend))]
            async fn session_load(&self, id: &str, now: i64) -> Result<Option<String>, $crate::DbError> {
                sessions::load(&self.$read, id, now).await
            }

            #[$crate::__tracing::instrument(name = "store.session_create", skip_all, fields(db.system = $backend))]
            async fn session_create(&self, id: &str, data: &str, expires_at: i64) -> Result<bool, $crate::DbError> {
                sessions::create(&self.$write, id, data, expires_at).await
            }

            #[$crate::__tracing::instrument(name = "store.session_save", skip_all, fields(db.system = $backend))]
            async fn session_save(&self, id: &str, data: &str, expires_at: i64) -> Result<(), $crate::DbError> {
                sessions::save(&self.$write, id, data, expires_at).await
            }

            #[$crate::__tracing::instrument(name = "store.session_delete", skip_all, fields(db.system = $backend))]
            async fn session_delete(&self, id: &str) -> Result<(), $crate::DbError> {
                sessions::delete(&self.$write, id).await
            }

            #[$crate::__tracing::instrument(name = "store.session_delete_expired", skip_all, fields(db.system = $backend))]
            async fn session_delete_expired(&self, now: i64) -> Result<u64, $crate::DbError> {
                sessions::delete_expired(&self.$write, now).await
            }

            #[$crate::__tracing::instrument(name = "store.tags", skip_all, fields(db.system = $backend))]
            async fn tags(&self) -> Result<Vec<String>, $crate::DbError> {
                articles::tags(&self.$read).await
            }
        }
    };
}
