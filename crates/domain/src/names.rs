//! Usernames and emails, parsed once: a [`Username`] or an [`Email`] can only hold a value
//! that follows the rules, and they are what the store takes, so nothing unchecked reaches a
//! query by way of them.

use std::fmt;
use std::ops::Deref;

use crate::limits::{BLANK, EMAIL_MAX, USERNAME_MAX, too_long};

/// Letters, digits, `_`, `-` and `.`, at most [`USERNAME_MAX`] characters: usernames appear
/// in URLs (`/profiles/{username}`). Surrounding whitespace is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(BLANK.into());
        }
        if value.chars().count() > USERNAME_MAX {
            return Err(too_long(USERNAME_MAX));
        }
        if !value.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err("may only contain letters, digits, '_', '-' and '.'".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trimmed and lower-cased, so `A@x.com` and `a@x.com` are one account; one `@` between a
/// non-empty local part and domain, no white space or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err(BLANK.into());
        }
        if value.chars().count() > EMAIL_MAX {
            return Err(too_long(EMAIL_MAX));
        }
        let valid = value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        });
        if !valid {
            return Err("is invalid".into());
        }
        Ok(Self(value.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Username {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Deref for Email {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_limited_to_url_safe_characters() {
        assert_eq!(Username::parse("  jake ").unwrap().as_str(), "jake");
        assert!(Username::parse("a.b_c-d9").is_ok());
        assert!(Username::parse("").is_err());
        assert!(Username::parse("a/b").is_err());
        assert!(Username::parse(&"x".repeat(USERNAME_MAX + 1)).is_err());
    }

    #[test]
    fn emails_are_lower_cased_and_need_one_at_sign() {
        assert_eq!(Email::parse(" Jake@Example.COM ").unwrap().as_str(), "jake@example.com");
        for bad in ["", "jake", "@x", "j@", "a@b@c", "a b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
