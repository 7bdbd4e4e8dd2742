//! Writers that touch one popular thing at once must not queue on one row's lock until the
//! first one commits: a count kept on a single row turns N concurrent writers into a line of N
//! commits (WAL flush included). Each test holds one writer's transaction open and checks that
//! a second writer of the same thing finishes meanwhile (it would wait forever on a shared row;
//! `lock_timeout` turns that wait into a failure).

use conduit_domain::model::UserId;
use conduit_domain::{Email, Slug, Username};
use conduit_store::{NewArticle, NewUser, Outgoing, Store};
use conduit_store_postgres::testing::fresh_store;
use sqlx::{Connection, PgConnection};

async fn user(store: &dyn Store, name: &str) -> UserId {
    let new = NewUser {
        username: Username::parse(name).unwrap(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        password_hash: "x".into(),
    };
    store.create_user(&new, &Outgoing::default()).await.unwrap().id
}

/// Two connections whose writes go to different stripes of a count (stripe = backend pid mod
/// 16): two connections of one stripe do wait for each other, by design, and a pool of 16 or
/// more connections spreads over all the stripes.
async fn two_writers(url: &str) -> (PgConnection, PgConnection) {
    let mut first = PgConnection::connect(url).await.unwrap();
    let first_stripe = stripe(&mut first).await;
    loop {
        let mut second = PgConnection::connect(url).await.unwrap();
        if stripe(&mut second).await != first_stripe {
            sqlx::query("SET lock_timeout = '3s'").execute(&mut second).await.unwrap();
            return (first, second);
        }
    }
}

async fn stripe(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid() % 16").fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn favorites_of_one_article_do_not_wait_for_each_other() {
    let (store, db) = fresh_store().await;
    let (author, ann, bob) = (user(&store, "author").await, user(&store, "ann").await, user(&store, "bob").await);
    let new = NewArticle { title: "Hot".into(), description: "d".into(), body: "b".into(), tags: vec![] };
    let slug = Slug::parse("hot").unwrap();
    let article = store.create_article(author, &slug, &new, None).await.unwrap().id.get();
    let (mut first, mut second) = two_writers(&db.url).await;
    let favorite = "INSERT INTO favorites (user_id, article_id) VALUES ($1, $2)";
    let unfavorite = "DELETE FROM favorites WHERE user_id = $1 AND article_id = $2";

    for (statement, want) in [(favorite, 2), (unfavorite, 0)] {
        let mut open = first.begin().await.unwrap();
        sqlx::query(statement).bind(ann.get()).bind(article).execute(&mut *open).await.unwrap();
        // Ann's change is not committed; Bob's must not wait for it.
        sqlx::query(statement)
            .bind(bob.get())
            .bind(article)
            .execute(&mut second)
            .await
            .expect("the second writer finished while the first one's transaction was open");
        open.commit().await.unwrap();
        let seen = store.inner().article(&slug, None).await.unwrap().unwrap();
        assert_eq!(seen.favorites_count, want, "after `{statement}` by both");
    }
}

#[tokio::test]
async fn a_deleted_articles_favorite_counts_go_with_it() {
    let (store, db) = fresh_store().await;
    let (author, ann) = (user(&store, "author").await, user(&store, "ann").await);
    let new = NewArticle { title: "Gone".into(), description: "d".into(), body: "b".into(), tags: vec![] };
    let slug = Slug::parse("gone").unwrap();
    let article = store.create_article(author, &slug, &new, None).await.unwrap().id;
    store.favorite(ann, &slug).await.unwrap();
    store.favorite(author, &slug).await.unwrap();
    assert!(store.delete_article(article, author).await.unwrap());
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM favorite_counts").fetch_one(&mut conn).await.unwrap();
    assert_eq!(left, 0, "no count rows outlive their article");
}
