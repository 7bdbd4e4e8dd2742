//! Bearer tokens: HS256 JWTs that name a user and expire.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::model::UserId;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id, as a string as RFC 7519 asks.
    pub sub: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
}

impl Claims {
    pub fn user_id(&self) -> Option<UserId> {
        self.sub.parse().ok()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token has expired")]
    Expired,
    #[error("token is invalid")]
    Invalid,
}

/// The signing secret and token lifetime. Cheap to clone.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("secret", &"[redacted]")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: chrono::Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn mint(&self, user: UserId, now: DateTime<Utc>) -> String {
        let claims = Claims {
            sub: user.to_string(),
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        // HS256 signing of a small struct cannot fail; a failure here is a programming error.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing never fails")
    }

    pub fn check(&self, token: &str) -> Result<Claims, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) if data.claims.user_id().is_some() => Ok(data.claims),
            Ok(_) => Err(TokenError::Invalid),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"test secret", chrono::Duration::hours(1))
    }

    #[test]
    fn minted_token_checks_and_names_the_user() {
        let token = keys().mint(42, Utc::now());
        assert_eq!(keys().check(&token).unwrap().user_id(), Some(42));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let old = keys().mint(1, Utc::now() - chrono::Duration::hours(2));
        assert_eq!(keys().check(&old), Err(TokenError::Expired));

        let token = keys().mint(1, Utc::now());
        let other = TokenKeys::new(b"other secret", chrono::Duration::hours(1));
        assert_eq!(other.check(&token), Err(TokenError::Invalid));

        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(keys().check(&tampered), Err(TokenError::Invalid));
        assert_eq!(keys().check(""), Err(TokenError::Invalid));
        assert_eq!(keys().check("a.b.c"), Err(TokenError::Invalid));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert!(!format!("{:?}", keys()).contains("test secret"));
    }
}
