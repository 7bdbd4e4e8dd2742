//! What the API returns. These serialize straight into the spec's JSON shapes (camelCase,
//! RFC 3339 timestamps), so handlers only wrap them: `{"article": ...}`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use crate::id::Id;

pub type UserId = Id<User>;
pub type ArticleId = Id<Article>;
pub type CommentId = Id<Comment>;

/// A registered account, as its owner (or an admin) sees it. Other users see a [`Profile`],
/// which has no email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    /// Whether they proved they read mail at `email` (a verification link or a password reset).
    pub email_verified: bool,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub role: Role,
    /// A deactivated user cannot log in, and their tokens and sessions stop working.
    pub active: bool,
    /// Tokens carry the version they were minted under; bumping it (password change,
    /// deactivation) revokes every earlier token.
    pub token_version: i64,
    /// Browser sessions ended by a logout whose minted tokens could still be unexpired: a
    /// token that names one of these (its `sid`) is refused.
    pub ended_sessions: Vec<String>,
    /// The token that changed the password, by id, and until when (Unix seconds) it outlives
    /// that change: at most the end of its login's re-authentication window.
    pub grace_token: Option<(String, i64)>,
    /// A moderator's suspension: until when (Unix seconds) and why. A suspended user can log
    /// in, read and export, but not write. Past its end it no longer counts (see
    /// [`User::suspended_at`]); nothing needs to clear it.
    pub suspension: Option<Suspension>,
    /// How many users this one blocks: a reader who blocks nobody is served the plain
    /// listings, one who does the listings that leave the blocked out.
    pub blocking: i64,
    pub created_at: DateTime<Utc>,
}

/// Until when (Unix seconds) and why a user may not write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub until: i64,
    pub reason: String,
}

impl User {
    /// The suspension in force at `now` (Unix seconds), if any.
    pub fn suspended_at(&self, now: i64) -> Option<&Suspension> {
        self.suspension.as_ref().filter(|s| s.until > now)
    }

    /// Moderators and admins: they act on reports and see what is hidden.
    pub fn moderates(&self) -> bool {
        self.role.moderates()
    }
}

/// What a user may do. Nobody is a moderator or an admin unless made one (`conduit user
/// promote`). A moderator answers reports (hides, deletes, suspends, purges); an admin can do
/// that and manage accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Moderator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "moderator" => Some(Role::Moderator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Moderators and admins.
    pub fn moderates(self) -> bool {
        matches!(self, Role::Moderator | Role::Admin)
    }
}

/// A user as any other user sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub following: bool,
}

/// An article. `body` is left out of lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Article {
    #[serde(skip)]
    pub id: ArticleId,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// Left out of lists of articles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `body` as sanitized HTML, rendered when it was written (see `markdown`); with `body`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    pub tag_list: Vec<String>,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    pub favorited: bool,
    pub favorites_count: i64,
    pub author: Profile,
    /// In search results only: the best passage of the body with the matched words in `<mark>`,
    /// everything else escaped (HTML).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// Hidden by a moderator: only its author and moderators see it, marked so.
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Comment {
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: CommentId,
    #[serde(serialize_with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    pub body: String,
    /// `body` as sanitized HTML, rendered when it was written (see `markdown`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_html: Option<String>,
    pub author: Profile,
    /// Hidden by a moderator: only its author and moderators see it, marked so.
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
}

/// Microseconds, because both databases keep them and an update a few hundred microseconds
/// after a create must still show a different `updatedAt`.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn timestamp<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn article_serializes_in_spec_shape_and_drops_missing_body() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 8, 9, 10).unwrap();
        let article = Article {
            id: ArticleId::new(7),
            slug: "s".into(),
            title: "t".into(),
            description: "d".into(),
            body: None,
            body_html: None,
            tag_list: vec!["a".into()],
            created_at: at,
            updated_at: at,
            favorited: false,
            favorites_count: 3,
            author: Profile { username: "u".into(), bio: None, image: None, following: true },
            snippet: None,
            hidden: false,
        };
        let json = serde_json::to_value(&article).unwrap();
        assert_eq!(json["createdAt"], "2026-11-23T08:09:10.000000Z");
        assert_eq!(json["tagList"], serde_json::json!(["a"]));
        assert_eq!(json["favoritesCount"], 3);
        assert!(json.get("body").is_none());
        assert!(json.get("bodyHtml").is_none() && json.get("snippet").is_none());
        assert!(json.get("id").is_none());
        assert_eq!(json["author"]["bio"], serde_json::Value::Null);
    }
}
