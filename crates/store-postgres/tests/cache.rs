//! The cache across instances: two stores on one database stand for two `conduit`
//! processes. A change made through one, or by plain SQL (as `conduit user ...` or an operator
//! would), must reach the other's cache.

use std::time::{Duration, Instant};

use conduit_domain::{Email, Slug, Username};
use conduit_store::Cached;
use conduit_store::{AccountChanges, ArticleChanges, NewArticle, NewUser, Outgoing, Store, UserChanges};
use conduit_store_postgres::PgStore;
use conduit_store_postgres::testing::{cached_store, fresh_store};

async fn second_instance(url: &str) -> Cached<PgStore> {
    cached_store(url, 4).await
}

async fn jake(store: &Cached<PgStore>) -> conduit_domain::model::UserId {
    let new = NewUser {
        username: Username::parse("jake").unwrap(),
        email: Email::parse("jake@example.com").unwrap(),
        password_hash: "x".into(),
    };
    store.create_user(&new, &Outgoing::default()).await.unwrap().id
}

/// Reads with `read` every millisecond until `done` holds, for at most 3 s: well under the
/// cache's 5 s age limit, so only a heard change can make it hold. Returns how long it took.
async fn until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    mut read: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let seen = read().await;
        if done(&seen) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(3), "still {seen:?} after 3 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn until_bio(b: &Cached<PgStore>, id: conduit_domain::model::UserId, want: &str) -> Duration {
    until(|| async move { b.user_by_id(id).await.unwrap().unwrap().bio }, |bio| bio.as_deref() == Some(want)).await
}

#[tokio::test]
async fn a_change_through_one_instance_is_seen_by_the_other_as_soon_as_it_returns() {
    let (a, db) = fresh_store().await;
    let b = second_instance(&db.url).await;
    let id = jake(&a).await;
    for round in 0..20 {
        // B has the user cached (else the test would prove nothing of the cache)...
        let before = b.user_by_id(id).await.unwrap().unwrap();
        assert!(b.serves_cached_user(id), "round {round}: B serves jake from its cache");
        assert_eq!(b.user_by_id(id).await.unwrap().unwrap(), before);
        // ...A changes it; once A returns, B must not answer with the old row.
        let bio = format!("round {round}");
        let changes = UserChanges { bio: Some(Some(bio.clone())), ..UserChanges::default() };
        a.update_user(id, &changes).await.unwrap().unwrap();
        assert_eq!(b.user_by_id(id).await.unwrap().unwrap().bio, Some(bio));
    }
    // Deactivation (an admin command) likewise.
    let off = AccountChanges { role: None, active: Some(false), by: None };
    assert!(b.user_by_id(id).await.unwrap().unwrap().active);
    a.set_account(&Username::parse("jake").unwrap(), &off).await.unwrap().unwrap();
    assert!(!b.user_by_id(id).await.unwrap().unwrap().active);
}

#[tokio::test]
async fn a_change_made_in_plain_sql_reaches_the_cache() {
    let (a, db) = fresh_store().await;
    let id = jake(&a).await;
    assert_eq!(a.user_by_id(id).await.unwrap().unwrap().bio, None);
    assert!(a.is_caching() && a.serves_cached_user(id), "jake is cached before the change");
    sqlx::query("UPDATE users SET bio = 'from psql' WHERE id = $1")
        .bind(id.get())
        .execute(a.inner().pool())
        .await
        .unwrap();
    let took = until_bio(&a, id, "from psql").await;
    assert!(took < Duration::from_secs(1), "took {took:?}");
    drop(db);
}

#[tokio::test]
async fn a_lost_listener_bypasses_the_cache_until_it_is_back() {
    let (a, db) = fresh_store().await;
    let id = jake(&a).await;
    assert!(a.is_caching());
    a.user_by_id(id).await.unwrap();
    // Cut the listening connection, then change the user while nobody listens.
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_one(a.inner().pool())
    .await
    .unwrap();
    assert_eq!(cut, 1, "exactly one listening connection");
    let started = Instant::now();
    while a.is_caching() {
        assert!(started.elapsed() < Duration::from_secs(5), "the lost listener went unnoticed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::query("UPDATE users SET bio = 'unheard' WHERE id = $1")
        .bind(id.get())
        .execute(a.inner().pool())
        .await
        .unwrap();
    assert_eq!(a.user_by_id(id).await.unwrap().unwrap().bio.as_deref(), Some("unheard"));
    // It listens again by itself, and changes are heard again.
    while !a.is_caching() {
        assert!(started.elapsed() < Duration::from_secs(10), "the listener did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.user_by_id(id).await.unwrap();
    sqlx::query("UPDATE users SET bio = 'heard' WHERE id = $1").bind(id.get()).execute(a.inner().pool()).await.unwrap();
    until_bio(&a, id, "heard").await;
    drop(db);
}

async fn until_article(b: &Cached<PgStore>, slug: &Slug, done: impl Fn(Option<&conduit_domain::Article>) -> bool) {
    until(|| async move { b.article(slug, None).await.unwrap() }, |article| done(article.as_ref())).await;
}

#[tokio::test]
async fn every_change_to_an_article_reaches_the_other_instances_anonymous_view() {
    let (a, db) = fresh_store().await;
    let b = second_instance(&db.url).await;
    let author = jake(&a).await;
    let new = NewArticle { title: "T".into(), description: "d".into(), body: "b".into(), tags: vec!["x".into()] };
    let created = a.create_article(author, &Slug::parse("t").unwrap(), &new, None).await.unwrap();
    let slug = Slug::parse(&created.slug).unwrap();
    let cached = b.article(&slug, None).await.unwrap().unwrap();
    assert_eq!(b.article(&slug, None).await.unwrap().unwrap(), cached);

    // Through the other instance: each is dropped by the notice, and A's own view at once.
    a.favorite(author, &slug).await.unwrap();
    assert_eq!(a.article(&slug, None).await.unwrap().unwrap().favorites_count, 1);
    until_article(&b, &slug, |v| v.is_some_and(|v| v.favorites_count == 1)).await;

    assert_eq!(b.tags().await.unwrap(), ["x"], "B has the tag list cached");
    let retag = ArticleChanges { tags: Some(vec!["y".into()]), body: Some("new".into()), ..ArticleChanges::default() };
    a.update_article(cached.id, author, &slug, None, &retag).await.unwrap().unwrap();
    assert_eq!(a.article(&slug, None).await.unwrap().unwrap().tag_list, ["y"]);
    until_article(&b, &slug, |v| v.is_some_and(|v| v.tag_list == ["y"] && v.body.as_deref() == Some("new"))).await;
    // The tag list too, on both at once: PostgreSQL tells of no new article, so the list is
    // read from its counts each time rather than cached, and a new article's tag shows at once.
    assert_eq!(a.tags().await.unwrap(), ["y"]);
    assert_eq!(b.tags().await.unwrap(), ["y"]);
    let other = NewArticle { title: "U".into(), description: "d".into(), body: "b".into(), tags: vec!["z".into()] };
    a.create_article(author, &Slug::parse("u").unwrap(), &other, None).await.unwrap();
    assert_eq!(b.tags().await.unwrap(), ["y", "z"], "a new article's tag, through the other instance");

    // The author's profile shows in the article.
    let bio = UserChanges { bio: Some(Some("hello".into())), ..UserChanges::default() };
    a.update_user(author, &bio).await.unwrap();
    assert_eq!(a.article(&slug, None).await.unwrap().unwrap().author.bio.as_deref(), Some("hello"));
    until_article(&b, &slug, |v| v.is_some_and(|v| v.author.bio.as_deref() == Some("hello"))).await;

    // In plain SQL, and then deleted.
    sqlx::query("UPDATE articles SET title = 'psql' WHERE slug = $1")
        .bind(slug.as_str())
        .execute(a.inner().pool())
        .await
        .unwrap();
    until_article(&b, &slug, |v| v.is_some_and(|v| v.title == "psql")).await;
    assert!(a.delete_article(cached.id, author).await.unwrap());
    assert!(a.article(&slug, None).await.unwrap().is_none());
    until_article(&b, &slug, |v| v.is_none()).await;
}
