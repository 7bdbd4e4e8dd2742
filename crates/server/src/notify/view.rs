//! A notification as the API writes it, in the inbox and on the stream alike.

use chrono::{DateTime, Utc};
use conduit_store::notifications::Notification;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Notification)]
pub struct NotificationView {
    /// Orders every notification: the stream's event id. A later event has a larger id.
    pub id: i64,
    /// `follow`, `comment` (on your article), `reply` (on an article you commented on),
    /// `favorite` (of your article), `moderation` (a moderator's action on your content), or,
    /// on the stream only, `article` (a new article by someone you follow).
    pub kind: &'static str,
    /// Who did it; absent for a moderator's action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<ActorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article: Option<ArticleRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<CommentRef>,
    /// For a favorite: how many others favorited the article before `actor` since you last
    /// read (one notice stands for them all, and a new favorite replaces it with a new id).
    pub others: i64,
    /// For a moderation notice: `hide`, `unhide`, `delete`, `suspend` or `unsuspend`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// For a moderation notice: what it was about (an article's slug, `slug#comment`, or your
    /// username).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ActorView {
    pub username: String,
    pub image: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ArticleRef {
    pub slug: String,
    pub title: String,
}

#[derive(Serialize, ToSchema)]
pub struct CommentRef {
    pub id: i64,
    /// The comment's first 200 characters.
    pub excerpt: String,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        NotificationView {
            id: n.id,
            kind: n.kind.as_str(),
            actor: n.actor.map(|a| ActorView { username: a.username, image: a.image }),
            article: n.article.map(|(slug, title)| ArticleRef { slug, title }),
            comment: n.comment.map(|(id, excerpt)| CommentRef { id, excerpt }),
            others: n.others,
            action: n.action,
            detail: n.detail,
            created_at: n.created_at,
            read: n.read,
        }
    }
}

/// The JSON of `n`, as a stream sends it.
pub fn json(n: Notification) -> String {
    serde_json::to_string(&NotificationView::from(n)).unwrap_or_else(|_| "{}".into())
}
