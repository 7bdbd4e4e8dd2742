//! Rows as both stores' queries return them, and their conversion to domain types. Each
//! store's `query_as!` fills these, so the two backends differ only in their SQL.

use chrono::{DateTime, Utc};
use conduit_domain::{Article, Comment, Profile};
use sqlx::types::Json;

/// One article with its author and the viewer's flags. `body` is NULL in listings; tags come
/// as a JSON array in the author's order.
pub struct ArticleRow {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub body: Option<String>,
    pub tag_list: Json<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub favorited: bool,
    pub favorites_count: i64,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
}

impl From<ArticleRow> for Article {
    fn from(r: ArticleRow) -> Self {
        Article {
            id: r.id,
            slug: r.slug,
            title: r.title,
            description: r.description,
            body: r.body,
            tag_list: r.tag_list.0,
            created_at: r.created_at,
            updated_at: r.updated_at,
            favorited: r.favorited,
            favorites_count: r.favorites_count,
            author: Profile { username: r.username, bio: r.bio, image: r.image, following: r.following },
        }
    }
}

/// One comment with its author and whether the viewer follows them.
pub struct CommentRow {
    pub id: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
}

impl From<CommentRow> for Comment {
    fn from(r: CommentRow) -> Self {
        Comment {
            id: r.id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            body: r.body,
            author: Profile { username: r.username, bio: r.bio, image: r.image, following: r.following },
        }
    }
}

/// An optional change of a nullable column as (change it?, new value), for SQL of the form
/// `col = CASE WHEN $n THEN $m ELSE col END`.
pub fn nullable_change(change: &Option<Option<String>>) -> (bool, Option<&str>) {
    match change {
        None => (false, None),
        Some(value) => (true, value.as_deref()),
    }
}
