//! Every request-field rule on arbitrary text: none panics, and what a rule accepts really
//! satisfies it (so the API stores exactly what the rules promise).
#![no_main]

use conduit_domain::validation::{self, EMAIL_MAX, PASSWORD_MAX, PASSWORD_MIN, TAG_MAX, TAGS_MAX, USERNAME_MAX};
use libfuzzer_sys::fuzz_target;

/// A C0 control character other than tab and line breaks: refused in every text field.
fn control(c: char) -> bool {
    c < ' ' && !matches!(c, '\t' | '\n' | '\r')
}

fuzz_target!(|input: &str| {
    for max in [1, 16, validation::TITLE_MAX] {
        if let Ok(text) = validation::text(input, max) {
            assert_eq!(text, input, "free text is stored verbatim");
            assert!(!text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(control));
        }
    }
    match validation::optional_text(Some(input), 16) {
        Ok(Some(text)) => assert_eq!(text, input),
        Ok(None) => assert!(input.trim().is_empty()),
        Err(_) => assert!(input.chars().count() > 16 || input.chars().any(control)),
    }

    if let Ok(name) = validation::username(input) {
        assert_eq!(name.as_str(), input.trim());
        assert_eq!(conduit_domain::Username::parse(&name).as_ref(), Ok(&name), "parsing is idempotent");
        assert!(!name.is_empty() && name.chars().count() <= USERNAME_MAX);
        assert!(name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')), "{name:?}");
    }

    if let Ok(email) = validation::email(input) {
        assert_eq!(email.as_str(), input.trim().to_lowercase());
        assert_eq!(conduit_domain::Email::parse(&email).as_ref(), Ok(&email), "parsing is idempotent");
        assert!(input.trim().chars().count() <= EMAIL_MAX);
        let (local, domain) = email.split_once('@').expect("an accepted email has an @");
        assert!(!local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        assert!(!email.chars().any(|c| c.is_whitespace() || c.is_control()), "{email:?}");
    }

    if let Ok(password) = validation::new_password(input) {
        assert_eq!(password, input);
        assert!((PASSWORD_MIN..=PASSWORD_MAX).contains(&password.chars().count()));
    }
    if let Ok(password) = validation::login_password(input) {
        assert!(!password.is_empty() && password.chars().count() <= PASSWORD_MAX);
    }

    // The same text as a tag list, one tag per line.
    let given: Vec<String> = input.split('\n').map(str::to_owned).collect();
    if let Ok(tags) = validation::tags(&given) {
        assert!(given.len() <= TAGS_MAX && tags.len() <= given.len());
        for (i, tag) in tags.iter().enumerate() {
            assert_eq!(tag, tag.trim());
            assert!(!tag.is_empty() && tag.chars().count() <= TAG_MAX && !tag.chars().any(control));
            assert!(!tags[..i].contains(tag), "duplicate tag {tag:?}");
            assert!(given.iter().any(|g| g.trim() == tag), "{tag:?} was not given");
        }
        // Every given tag survives (deduplicated), in first-seen order.
        let mut expected: Vec<&str> = Vec::new();
        for g in &given {
            if !expected.contains(&g.trim()) {
                expected.push(g.trim());
            }
        }
        assert_eq!(tags, expected);
    }
});
