//! Validated input. Each `parse` function returns either clean values or every problem found,
//! keyed by the JSON field that caused it, which is exactly the API's error shape.

use std::collections::BTreeMap;

use crate::names::{Email, Username};

/// The field names errors can be reported under. A closed set keeps the error keys stable.
pub type Field = &'static str;

/// Problems with a request, field by field: `{"errors":{"title":["can't be blank"]}}`.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Errors(BTreeMap<Field, Vec<String>>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: Field, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: Field, message: impl Into<String>) {
        self.0.entry(field).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was reported, else the collected errors.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }

    /// Each field with its problems, by field name.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &[String])> {
        self.0.iter().map(|(field, messages)| (*field, messages.as_slice()))
    }

    pub fn messages(&self, field: Field) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or_default()
    }

    /// Keeps the first problem of a field's check, if any, and yields the value otherwise.
    pub fn check<T>(&mut self, field: Field, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }
}

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, messages) in &self.0 {
            for message in messages {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                write!(f, "{field} {message}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

use crate::limits::too_long;
pub use crate::limits::{
    BIO_MAX, BLANK, BODY_MAX, COMMENT_MAX, DESCRIPTION_MAX, EMAIL_MAX, IMAGE_MAX, PASSWORD_MAX, PASSWORD_MIN, TAG_MAX,
    TAGS_MAX, TAKEN, TITLE_MAX, USERNAME_MAX,
};

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// What a text holding a C0 control character other than tab, line feed and carriage return is
/// told. Such characters mean nothing in a text, NUL cannot be stored in PostgreSQL, and JSON
/// writes each as six bytes (`\u0001`): a page of such comments was six times its stored size.
pub const CONTROL_CHARACTERS: &str = "must not contain control characters (other than tab and line breaks)";

fn has_control_characters(value: &str) -> bool {
    value.chars().any(|c| c < ' ' && !matches!(c, '\t' | '\n' | '\r'))
}

/// A required free-text field: not blank, not over `max` characters. Stored verbatim.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    if is_blank(value) {
        Err(BLANK.into())
    } else if value.chars().count() > max {
        Err(too_long(max))
    } else if has_control_characters(value) {
        Err(CONTROL_CHARACTERS.into())
    } else {
        Ok(value.to_owned())
    }
}

/// An optional free-text field where `""` means "clear it": yields `None` for blank.
pub fn optional_text(value: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) if is_blank(v) => Ok(None),
        Some(v) => text(v, max).map(Some),
    }
}

/// See [`Username`].
pub fn username(value: &str) -> Result<Username, String> {
    Username::parse(value)
}

/// See [`Email`].
pub fn email(value: &str) -> Result<Email, String> {
    Email::parse(value)
}

/// A new password (registration or change): NIST 800-63B length rules, nothing else.
pub fn new_password(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(BLANK.into());
    }
    let length = value.chars().count();
    if length < PASSWORD_MIN {
        return Err(format!("is too short (minimum is {PASSWORD_MIN} characters)"));
    }
    if length > PASSWORD_MAX {
        return Err(too_long(PASSWORD_MAX));
    }
    Ok(value.to_owned())
}

/// A password offered at login is only checked for presence: length rules may have changed
/// since it was set, and a wrong one is reported as bad credentials, not as a rule.
pub fn login_password(value: &str) -> Result<String, String> {
    if value.is_empty() {
        Err(BLANK.into())
    } else if value.chars().count() > PASSWORD_MAX {
        Err(too_long(PASSWORD_MAX))
    } else {
        Ok(value.to_owned())
    }
}

/// Tags are trimmed, duplicates dropped (first one wins, order kept), blanks refused.
pub fn tags(values: &[String]) -> Result<Vec<String>, String> {
    if values.len() > TAGS_MAX {
        return Err(format!("is too long (maximum is {TAGS_MAX} tags)"));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let tag = value.trim();
        if tag.is_empty() {
            return Err("must not contain blank tags".into());
        }
        if tag.chars().count() > TAG_MAX {
            return Err(format!("has a tag that is too long (maximum is {TAG_MAX} characters)"));
        }
        if has_control_characters(tag) {
            return Err(CONTROL_CHARACTERS.into());
        }
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_but_tab_and_line_breaks() {
        for bad in ["a\u{0}b", "a\u{1}", "\u{7}bell", "esc\u{1b}[2J", "x\u{1f}"] {
            assert_eq!(text(bad, 100), Err(CONTROL_CHARACTERS.into()), "{bad:?}");
            assert_eq!(tags(&[bad.into()]), Err(CONTROL_CHARACTERS.into()), "{bad:?}");
        }
        assert!(text("a\tb\nc\r\nd", 100).is_ok());
        assert!(text("caf\u{e9} \u{1F600}", 100).is_ok(), "not ASCII is not control");
    }

    #[test]
    fn blank_text_is_refused_and_other_text_kept_verbatim() {
        assert_eq!(text("", 10), Err(BLANK.to_string()));
        assert_eq!(text("   ", 10), Err(BLANK.to_string()));
        assert_eq!(text(" a ", 10), Ok(" a ".to_string()));
        assert!(text("abcdefghijk", 10).unwrap_err().contains("maximum is 10"));
        assert!(text("a\0b", 10).is_err());
    }

    #[test]
    fn optional_text_turns_blank_into_none() {
        assert_eq!(optional_text(Some(""), 10), Ok(None));
        assert_eq!(optional_text(None, 10), Ok(None));
        assert_eq!(optional_text(Some("x"), 10), Ok(Some("x".into())));
    }

    #[test]
    fn usernames_are_trimmed_and_restricted() {
        assert_eq!(username("  jake_1.b-c ").unwrap().as_str(), "jake_1.b-c");
        assert_eq!(username("").unwrap_err(), BLANK);
        assert!(username("a/b").is_err());
        assert!(username("a b").is_err());
        assert!(username(&"x".repeat(USERNAME_MAX + 1)).is_err());
        assert_eq!(username("jürgen").unwrap().as_str(), "jürgen");
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(email(" Jake@Example.COM ").unwrap().as_str(), "jake@example.com");
        assert_eq!(email("").unwrap_err(), BLANK);
        for bad in ["jake", "@x.com", "jake@", "a@b@c", "a b@c.d"] {
            assert_eq!(email(bad).unwrap_err(), "is invalid", "{bad}");
        }
    }

    #[test]
    fn new_passwords_follow_nist_lengths() {
        assert_eq!(new_password(""), Err(BLANK.into()));
        assert!(new_password("short7c").unwrap_err().contains("minimum is 8"));
        assert!(new_password("bonjour1").is_ok());
        assert!(new_password(&"a".repeat(64)).is_ok());
        assert!(new_password(&"a".repeat(PASSWORD_MAX + 1)).is_err());
        // Login only checks presence: an old short password can still be tried.
        assert!(login_password("short").is_ok());
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_ordered() {
        let input = vec!["b".to_string(), " a ".into(), "b".into()];
        assert_eq!(tags(&input), Ok(vec!["b".into(), "a".into()]));
        assert!(tags(&["".into()]).is_err());
        assert!(tags(&vec!["t".to_string(); TAGS_MAX + 1]).is_err());
        assert!(tags(&["x".repeat(TAG_MAX + 1)]).is_err());
    }

    #[test]
    fn errors_collect_per_field_and_serialize_in_spec_shape() {
        let mut errors = Errors::new();
        errors.add("title", BLANK);
        errors.add("body", BLANK);
        errors.add("title", "x");
        let json = serde_json::to_value(&errors).unwrap();
        assert_eq!(json, serde_json::json!({"body": [BLANK], "title": [BLANK, "x"]}));
        assert_eq!(errors.messages("title").len(), 2);
        assert_eq!(errors.to_string(), "body can't be blank; title can't be blank; title x");
    }
}
