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
    /// The user's token version when this was minted; a later version revokes it. Tokens from
    /// before versions existed count as version 0.
    #[serde(default)]
    pub ver: i64,
    /// A random id, so one token can be told from another of the same user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// When the holder last proved their password (a login or a registration), seconds since
    /// the epoch. Tokens renewed from this one keep it, so renewal cannot make a login recent.
    /// Tokens from before it existed count as 0: not recent.
    #[serde(default)]
    pub auth_time: i64,
    /// The browser session this token was handed to, if any: when that session ends, so does
    /// the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// What a token grants beyond naming its user: when its holder last logged in, and the browser
/// session it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Seconds since the epoch of the last login (see [`Claims::auth_time`]).
    pub auth_time: i64,
    /// The session's token id (see [`Claims::sid`]).
    pub session: Option<String>,
}

impl Grant {
    /// A login that happened `now`, outside any browser session.
    pub fn login(now: DateTime<Utc>) -> Self {
        Grant { auth_time: now.timestamp(), session: None }
    }
}

/// Tokens handed to a browser session live at most this long, the time a session lasts without
/// use: so no such token outlives the session it came from.
pub const SESSION_TOKEN_MAX_TTL_DAYS: i64 = 14;

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
    #[error("claims {0}")]
    Claims(&'static str),
}

/// A token's claims as a JSON object.
pub type ClaimMap = serde_json::Map<String, serde_json::Value>;

/// The signing secret and token lifetime. Cheap to clone (it is cloned with the app state on
/// every request): the keys are shared, not copied.
#[derive(Clone)]
pub struct TokenKeys(std::sync::Arc<Keys>);

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
    /// Tokens whose signature was checked, with their claims: the same token on the next
    /// request is not verified and parsed again (HMAC-SHA256 with its key set up anew, base64
    /// and two JSON parses: half the instructions of `GET /api/user`). Only an exact match of
    /// the whole token hits, so a tampered token is always checked; expiry is checked on every
    /// use. Revocation is none of this cache's business: the caller checks the user's token
    /// version and ended sessions on every request.
    checked: std::sync::Mutex<std::collections::HashMap<Box<str>, Claims>>,
}

/// Checked tokens remembered at most; past it the cache starts over (~0.5 KB each, 8 MiB at
/// most). Enough for every user of a busy site at once: at 2,048, the 10,000 tokens of open
/// notification streams pushed out the writers' ones, and each write checked its token again
/// (22,000 instructions; BENCHMARKS.md, "Notifications").
const CHECKED_TOKENS: usize = 16_384;

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("secret", &"[redacted]").field("ttl", &self.0.ttl).finish()
    }
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: chrono::Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self(std::sync::Arc::new(Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            checked: std::sync::Mutex::default(),
        }))
    }

    /// How long tokens live.
    pub fn ttl(&self) -> chrono::Duration {
        self.0.ttl
    }

    pub fn mint(&self, user: UserId, version: i64, grant: &Grant, now: DateTime<Utc>) -> String {
        let jti = format!("{:032x}", rand::random::<u128>());
        let ttl = match grant.session {
            Some(_) => self.0.ttl.min(chrono::Duration::days(SESSION_TOKEN_MAX_TTL_DAYS)),
            None => self.0.ttl,
        };
        let claims = Claims {
            sub: user.to_string(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            ver: version,
            jti: Some(jti),
            auth_time: grant.auth_time,
            sid: grant.session.clone(),
        };
        // HS256 signing of a small struct cannot fail; a failure here is a programming error.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .expect("HS256 signing never fails")
    }

    pub fn check(&self, token: &str) -> Result<Claims, TokenError> {
        self.check_at(token, Utc::now().timestamp())
    }

    /// [`TokenKeys::check`] at `now` (seconds since the epoch) for a token checked before; a
    /// token seen for the first time is checked against the clock.
    fn check_at(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let checked = |keys: &Keys| keys.checked.lock().unwrap_or_else(|p| p.into_inner()).get(token).cloned();
        if let Some(claims) = checked(&self.0) {
            // As jsonwebtoken decides with no leeway: expired once `exp` is in the past.
            return if claims.exp < now { Err(TokenError::Expired) } else { Ok(claims) };
        }
        let claims = self.decode::<Claims>(token)?;
        if claims.user_id().is_none() {
            return Err(TokenError::Invalid);
        }
        let mut cache = self.0.checked.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CHECKED_TOKENS {
            cache.clear();
        }
        cache.insert(token.into(), claims.clone());
        Ok(claims)
    }

    /// Checks a token exactly as [`TokenKeys::check`] does and returns all of its claims,
    /// including any beyond `sub`, `iat` and `exp`.
    pub fn check_all(&self, token: &str) -> Result<ClaimMap, TokenError> {
        self.check(token)?;
        self.decode::<ClaimMap>(token)
    }

    /// Signs `claims` plus `iat` and `exp` (from `now` and `ttl`, replacing any given). `sub`
    /// must name a user id, as a string or an integer; it is written as a string, the form
    /// [`TokenKeys::check`] accepts.
    pub fn mint_claims(
        &self,
        mut claims: ClaimMap,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<String, TokenError> {
        let sub = match claims.get("sub") {
            Some(serde_json::Value::String(s)) if s.parse::<UserId>().is_ok() => s.clone(),
            Some(serde_json::Value::Number(n)) if n.as_i64().is_some() => n.to_string(),
            _ => {
                return Err(TokenError::Claims("`sub` must be a user id (an integer or a string of digits)"));
            }
        };
        claims.insert("sub".into(), sub.into());
        claims.insert("iat".into(), now.timestamp().into());
        claims.insert("exp".into(), (now + ttl).timestamp().into());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.0.encoding)
            .map_err(|_| TokenError::Claims("cannot be signed"))
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<T>(token, &self.0.decoding, &self.0.validation) {
            Ok(data) => Ok(data.claims),
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
    fn a_remembered_token_still_expires_and_a_tampered_one_is_still_refused() {
        let keys = keys();
        let token = keys.mint(UserId::new(7), 0, &Grant::default(), Utc::now());
        let now = Utc::now().timestamp();
        assert_eq!(keys.check_at(&token, now).unwrap().user_id(), Some(UserId::new(7)));
        // Now remembered: the same answer, until it expires.
        assert_eq!(keys.check_at(&token, now).unwrap().user_id(), Some(UserId::new(7)));
        assert_eq!(keys.check_at(&token, now + 2 * 3600), Err(TokenError::Expired));
        let mut tampered = token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(keys.check(&tampered), Err(TokenError::Invalid));
        // Another secret never accepts it, whatever this one remembers.
        assert_eq!(
            TokenKeys::new(b"another secret", chrono::Duration::hours(1)).check(&token),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn minted_token_checks_and_names_the_user() {
        let token = keys().mint(UserId::new(42), 0, &Grant::default(), Utc::now());
        assert_eq!(keys().check(&token).unwrap().user_id(), Some(UserId::new(42)));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let old = keys().mint(UserId::new(1), 0, &Grant::default(), Utc::now() - chrono::Duration::hours(2));
        assert_eq!(keys().check(&old), Err(TokenError::Expired));

        let token = keys().mint(UserId::new(1), 0, &Grant::default(), Utc::now());
        let other = TokenKeys::new(b"other secret", chrono::Duration::hours(1));
        assert_eq!(other.check(&token), Err(TokenError::Invalid));

        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(keys().check(&tampered), Err(TokenError::Invalid));
        assert_eq!(keys().check(""), Err(TokenError::Invalid));
        assert_eq!(keys().check("a.b.c"), Err(TokenError::Invalid));
    }

    #[test]
    fn minted_claims_keep_extras_and_check_like_the_server() {
        let mut claims = ClaimMap::new();
        claims.insert("sub".into(), 7.into());
        claims.insert("role".into(), "reader".into());
        claims.insert("exp".into(), 1.into()); // replaced
        let token = keys().mint_claims(claims, Utc::now(), chrono::Duration::hours(1)).unwrap();
        assert_eq!(keys().check(&token).unwrap().user_id(), Some(UserId::new(7)));
        let all = keys().check_all(&token).unwrap();
        assert_eq!((all["sub"].as_str(), all["role"].as_str()), (Some("7"), Some("reader")));

        for bad in [serde_json::json!("jake"), serde_json::json!(null), serde_json::json!(1.5)] {
            let mut claims = ClaimMap::new();
            claims.insert("sub".into(), bad);
            assert!(keys().mint_claims(claims, Utc::now(), chrono::Duration::hours(1)).is_err());
        }
        assert!(keys().mint_claims(ClaimMap::new(), Utc::now(), chrono::Duration::hours(1)).is_err());
    }

    #[test]
    fn grants_round_trip_and_session_tokens_never_outlive_a_session() {
        let long = TokenKeys::new(b"test secret", chrono::Duration::days(30));
        let now = Utc::now();
        let grant = Grant { auth_time: 1234, session: Some("s1".into()) };
        let claims = long.check(&long.mint(UserId::new(7), 3, &grant, now)).unwrap();
        assert_eq!((claims.auth_time, claims.sid.as_deref(), claims.ver), (1234, Some("s1"), 3));
        assert_eq!(claims.exp, (now + chrono::Duration::days(SESSION_TOKEN_MAX_TTL_DAYS)).timestamp());
        let plain = long.check(&long.mint(UserId::new(7), 3, &Grant::login(now), now)).unwrap();
        assert_eq!((plain.auth_time, plain.sid, plain.exp), (now.timestamp(), None, (now + long.ttl()).timestamp()));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        assert!(!format!("{:?}", keys()).contains("test secret"));
    }
}
