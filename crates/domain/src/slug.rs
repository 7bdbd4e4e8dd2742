//! Slugs: the URL name of an article, made from its title.

use std::fmt;
use std::ops::Deref;

use rand::Rng;

const BASE_MAX: usize = 80;
/// `-` and six characters: see [`with_suffix`].
const SUFFIX_LEN: usize = 7;

/// A slug as [`slugify`] and [`with_suffix`] make them: letters and digits in runs joined by
/// single dashes, at most 87 characters. A slug from a URL that is not one names no article.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    pub fn parse(value: &str) -> Result<Self, String> {
        let well_formed = !value.is_empty()
            && value.chars().count() <= BASE_MAX + SUFFIX_LEN
            && value.split('-').all(|run| !run.is_empty() && run.chars().all(char::is_alphanumeric));
        if well_formed { Ok(Self(value.to_owned())) } else { Err("is not a slug".into()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Slug {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-cases the title and keeps letters and digits, joining runs of anything else with one
/// `-`. Non-ASCII letters are kept (URLs percent-encode them). Never empty.
pub fn slugify(title: &str) -> Slug {
    let mut slug = String::with_capacity(title.len().min(BASE_MAX));
    let mut length = 0;
    let mut pending_dash = false;
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            let dash = pending_dash && !slug.is_empty();
            // The dash and the character go in together or not at all: a trailing dash, or
            // one character past the bound, would both be wrong.
            if length + usize::from(dash) + 1 > BASE_MAX {
                break;
            }
            if dash {
                slug.push('-');
                length += 1;
            }
            pending_dash = false;
            slug.push(c);
            length += 1;
        } else {
            pending_dash = true;
        }
    }
    Slug(if slug.is_empty() { "article".to_owned() } else { slug })
}

/// The slug to try after `base` was taken: `base-x7k2qp`. Random rather than counted so two
/// writers racing for the same title do not race for the same suffix too.
pub fn with_suffix(base: &Slug) -> Slug {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    Slug(format!("{base}-{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_joins_words_with_single_dashes() {
        assert_eq!(slugify("How to train your dragon").as_str(), "how-to-train-your-dragon");
        assert_eq!(slugify("  Hello,  World!! ").as_str(), "hello-world");
        assert_eq!(slugify("C++ & Rust: 2026").as_str(), "c-rust-2026");
        assert_eq!(slugify("Über Straße").as_str(), "über-straße");
    }

    #[test]
    fn slugify_is_never_empty_and_bounded() {
        assert_eq!(slugify("!!!").as_str(), "article");
        assert_eq!(slugify("").as_str(), "article");
        assert_eq!(slugify(&"a".repeat(500)).chars().count(), BASE_MAX);
        // Found by the `slug` fuzz target: a dash at the 80th character used to push one past.
        let title = format!("{} {}", "t".repeat(79), "a".repeat(10));
        assert_eq!(slugify(&title).as_str(), "t".repeat(79));
    }

    #[test]
    fn what_slugify_and_with_suffix_make_parses_and_nothing_else() {
        for title in ["How to train your dragon", "Über Straße", "!!!", &"a".repeat(500)] {
            let slug = slugify(title);
            assert_eq!(Slug::parse(&slug), Ok(slug.clone()));
            assert!(Slug::parse(&with_suffix(&slug)).is_ok());
        }
        for bad in ["", "-a", "a-", "a--b", "a b", "a/b", "a%2f", &"a".repeat(BASE_MAX + SUFFIX_LEN + 1)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn suffix_keeps_base_and_differs_between_calls() {
        let a = with_suffix(&slugify("title"));
        let b = with_suffix(&slugify("title"));
        assert!(a.starts_with("title-") && a.len() == "title-".len() + 6);
        assert_ne!(a, b);
    }
}

/// Whether `slug` already suits `title`: it is the title's slug, or that slug with a suffix
/// from [`with_suffix`]. An update that keeps the title then keeps the slug too.
pub fn fits(slug: &str, title: &str) -> bool {
    let base = slugify(title);
    match slug.strip_prefix(base.as_str()) {
        Some("") => true,
        Some(rest) => {
            rest.len() == 7
                && rest.starts_with('-')
                && rest[1..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod fits_tests {
    use super::*;

    #[test]
    fn slug_fits_its_title_with_or_without_suffix() {
        assert!(fits("hello-world", "Hello, World"));
        assert!(fits(&with_suffix(&slugify("hello-world")), "Hello World"));
        assert!(!fits("hello-world", "Goodbye"));
        assert!(!fits("hello-world-and-more", "Hello World"));
    }
}
