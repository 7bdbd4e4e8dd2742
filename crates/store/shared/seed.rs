//! Demo data in bulk (`conduit seed`): many rows in one transaction, each with the same checked
//! single-row statements, so one transaction's commit (the expensive part) covers thousands of
//! rows. Shared by both backends (see README.md).

use chrono::Utc;
use conduit_domain::model::UserId;
use conduit_store::{DbError, NewUser, SeedArticle};

use crate::{Pool, articles};

pub async fn users(db: &Pool, users: &[NewUser]) -> Result<Vec<UserId>, DbError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let mut ids = Vec::with_capacity(users.len());
    for new in users {
        let (username, email) = (new.username.as_str(), new.email.as_str());
        let id = sqlx::query_scalar!(
            r#"INSERT INTO users (username, email, password_hash, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $4) RETURNING id AS "id!""#,
            username,
            email,
            new.password_hash,
            now
        )
        .fetch_one(&mut *tx)
        .await?;
        ids.push(UserId::new(id));
    }
    tx.commit().await?;
    Ok(ids)
}

pub async fn follows(db: &Pool, follows: &[(UserId, UserId)]) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    for (follower, followee) in follows {
        let (follower, followee) = (follower.get(), followee.get());
        sqlx::query!(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            follower,
            followee
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn articles(db: &Pool, articles: &[SeedArticle]) -> Result<(), DbError> {
    let mut tx = db.begin().await?;
    for seeded in articles {
        let id =
            articles::insert(&mut tx, seeded.author, &seeded.slug, &seeded.article, seeded.created_at).await?.get();
        for user in &seeded.favorited_by {
            let user = user.get();
            sqlx::query!(
                "INSERT INTO favorites (user_id, article_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                user,
                id
            )
            .execute(&mut *tx)
            .await?;
        }
        for (commenter, body) in &seeded.comments {
            let (commenter, at) = (commenter.get(), seeded.created_at);
            let html = conduit_domain::markdown::to_safe_html(body);
            sqlx::query!(
                "INSERT INTO comments (article_id, author_id, body, body_html, created_at, updated_at)
                 VALUES ($1, $2, $3, $5, $4, $4)",
                id,
                commenter,
                body,
                at,
                html
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
