//! Slugs from arbitrary titles: never panics, and every slug is URL-safe in shape, bounded,
//! stable, and "fits" its title with or without a collision suffix.
#![no_main]

use conduit_domain::slug::{Slug, fits, slugify, with_suffix};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|title: &str| {
    let slug = slugify(title);
    assert!(!slug.is_empty());
    assert!(slug.chars().count() <= 80, "{slug:?}");
    assert!(!slug.starts_with('-') && !slug.ends_with('-') && !slug.contains("--"), "{slug:?}");
    assert!(slug.chars().all(|c| c == '-' || c.is_alphanumeric()), "{slug:?}");
    assert!(!slug.contains(['/', '?', '#', '%', ' ']), "{slug:?}");
    assert!(fits(&slug, title), "{slug:?} does not fit {title:?}");
    assert!(fits(&with_suffix(&slug), title));
    // Every slug made is one a URL can name.
    assert_eq!(Slug::parse(&slug).as_ref(), Ok(&slug));
    assert!(Slug::parse(&with_suffix(&slug)).is_ok());
    assert_eq!(slugify(&slug), slug, "a slug is its own slug");

    // `fits` on arbitrary pairs never panics (it slices the candidate).
    if let Some((candidate, other)) = title.split_once('\n') {
        let _ = fits(candidate, other);
    }
});
