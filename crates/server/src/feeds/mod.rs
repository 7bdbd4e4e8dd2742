//! RSS 2.0 and Atom 1.0 feeds of the newest articles: of all, of a tag, of an author.
//!
//! A feed is built from the same listing `GET /api/articles` serves (its statement, its filter)
//! and the articles' stored HTML (`bodyHtml`, sanitized when written), so it costs one listing
//! and, when it changed, the bodies. Its validator ([`Validator`]) is a hash of what the
//! listing says about each item (id, last change, author), which every instance computes alike
//! from the database: a reader's `If-None-Match` gets a 304 from any instance until an article
//! of the feed is published, edited, deleted or its author renamed. The built documents are kept
//! by validator ([`Built`]), so an unchanged feed is not built twice.

pub mod xml;

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use conduit_domain::Article;
use sha2::{Digest, Sha256};

/// How many articles a feed holds: the newest.
pub const FEED_ITEMS: i64 = 20;

/// RSS 2.0 or Atom 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Rss,
    Atom,
}

impl Format {
    /// From the path's last segment: `rss` or `atom`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "rss" => Some(Format::Rss),
            "atom" => Some(Format::Atom),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Rss => "rss",
            Format::Atom => "atom",
        }
    }
}

/// Which articles: every one, a tag's, or an author's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    All,
    Tag(String),
    Author(String),
}

impl Scope {
    pub fn title(&self, site: &str) -> String {
        match self {
            Scope::All => format!("Conduit at {site}: newest articles"),
            Scope::Tag(tag) => format!("Conduit at {site}: articles tagged {tag}"),
            Scope::Author(name) => format!("Conduit at {site}: articles by {name}"),
        }
    }

    /// The feed's own path under the site, for its `self` link.
    pub fn path(&self, format: Format) -> String {
        let format = format.name();
        match self {
            Scope::All => format!("/api/feeds/{format}"),
            Scope::Tag(tag) => format!("/api/feeds/tag/{}/{format}", url_segment(tag)),
            Scope::Author(name) => format!("/api/feeds/author/{}/{format}", url_segment(name)),
        }
    }
}

/// A strong validator: the SHA-256 of the format, the scope and, for each item in order, its
/// id, last change and author. Quoted, as `ETag` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator(pub String);

impl Validator {
    pub fn of(format: Format, scope: &Scope, items: &[Article]) -> Self {
        let mut hash = Sha256::new();
        hash.update(format!("{format:?} {scope:?}\n"));
        for article in items {
            hash.update(format!(
                "{} {} {}\n",
                article.id,
                article.updated_at.timestamp_micros(),
                article.author.username
            ));
        }
        let digest = hash.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Validator(format!("\"{hex}\""))
    }

    /// Whether an `If-None-Match` header names this validator (or is `*`).
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == self.0)
    }
}

/// When the feed last changed: its newest change, or the epoch for an empty feed.
pub fn last_modified(items: &[Article]) -> DateTime<Utc> {
    items.iter().map(|a| a.updated_at).max().unwrap_or(DateTime::UNIX_EPOCH)
}

/// Built documents by feed, with the validator each was built for. Bounded: when full it starts
/// over (feeds are cheap to build again; a crawler walking every tag must not grow it forever).
#[derive(Default)]
pub struct Built {
    documents: Mutex<HashMap<(Format, Scope), (Validator, Bytes)>>,
}

/// How many feeds [`Built`] keeps.
const BUILT_KEPT: usize = 1_000;

impl Built {
    /// The document built for `validator`, if it is the one kept.
    pub fn get(&self, format: Format, scope: &Scope, validator: &Validator) -> Option<Bytes> {
        let documents = self.documents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        documents.get(&(format, scope.clone())).filter(|(kept, _)| kept == validator).map(|(_, doc)| doc.clone())
    }

    pub fn keep(&self, format: Format, scope: Scope, validator: Validator, document: Bytes) {
        let mut documents = self.documents.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if documents.len() >= BUILT_KEPT {
            documents.clear();
        }
        documents.insert((format, scope), (validator, document));
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn url_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_match_their_own_tag_only() {
        let v = Validator("\"abc\"".into());
        assert!(v.matches("\"abc\""));
        assert!(v.matches("\"x\", W/\"abc\""));
        assert!(v.matches("*"));
        assert!(!v.matches("\"abd\""));
        assert_eq!(url_segment("a b/é"), "a%20b%2F%C3%A9");
    }
}
