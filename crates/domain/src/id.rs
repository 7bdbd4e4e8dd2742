//! Row ids that cannot be mixed up: an `Id<User>` is not an `Id<Article>`, though both are
//! 64-bit integers in the database, so passing one where the other is due does not compile. The
//! ids of the model (`UserId`, ...) are named beside their types, in `model.rs`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id of a `T` row.
pub struct Id<T> {
    raw: i64,
    kind: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    /// The id the database gave a row.
    pub const fn new(raw: i64) -> Self {
        Self { raw, kind: PhantomData }
    }

    /// As the database stores it.
    pub const fn get(self) -> i64 {
        self.raw
    }
}

/// What the database gave, as a typed id (sqlx's `query_as!` converts columns with `Into`).
impl<T> From<i64> for Id<T> {
    fn from(raw: i64) -> Self {
        Self::new(raw)
    }
}

// Written out rather than derived: a derive would demand the same of `T`.
impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Id<T> {}

impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl<T> Eq for Id<T> {}

impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.raw.cmp(&other.raw)
    }
}

impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T> std::str::FromStr for Id<T> {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self::new)
    }
}

/// In JSON an id is the plain number the spec shows.
impl<T> Serialize for Id<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Id<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        i64::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rows of their own: the model's types would make this file import the model.
    struct User;
    struct Article;
    struct Comment;
    type UserId = Id<User>;
    type ArticleId = Id<Article>;
    type CommentId = Id<Comment>;

    #[test]
    fn ids_show_and_parse_as_their_number() {
        let id = UserId::new(42);
        assert_eq!(id.to_string(), "42");
        assert_eq!("42".parse::<UserId>().unwrap(), id);
        assert_eq!(serde_json::to_string(&ArticleId::new(7)).unwrap(), "7");
        assert_eq!(serde_json::from_str::<CommentId>("9").unwrap(), CommentId::new(9));
    }
}
