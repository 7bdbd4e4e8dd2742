//! Token parsing on arbitrary input: never panics, accepts nothing it did not sign, and a
//! token it signed survives the round trip but not tampering.
#![no_main]

use chrono::{Duration, Utc};
use conduit_domain::token::{Grant, TokenKeys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = TokenKeys::new(b"a fuzzing secret that is at least 32 characters long", Duration::hours(1));
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(claims) = keys.check(text) {
            panic!("accepted a token it never signed: {text:?} -> {claims:?}");
        }
        let _ = keys.check_all(text);
    }

    // Round trip with a user id and version taken from the input.
    let mut id = [0u8; 8];
    let mut version = [0u8; 8];
    for (i, byte) in data.iter().enumerate().take(16) {
        if i < 8 { id[i] = *byte } else { version[i - 8] = *byte }
    }
    let user = conduit_domain::model::UserId::new(i64::from_le_bytes(id).rem_euclid(i64::MAX));
    let version = i64::from_le_bytes(version);
    // The login time and session id from the input too, when there is enough of it.
    let auth_time = data.get(16..24).map_or(0, |b| i64::from_le_bytes(b.try_into().unwrap()));
    let session = data.get(24..).and_then(|b| std::str::from_utf8(b).ok()).map(str::to_owned);
    let grant = Grant { auth_time, session: session.clone() };
    let token = keys.mint(user, version, &grant, Utc::now());
    let claims = keys.check(&token).expect("a fresh token checks");
    assert_eq!((claims.user_id(), claims.ver), (Some(user), version));
    assert_eq!((claims.auth_time, claims.sid), (auth_time, session));

    // Change one character in the middle of the signature (whole 6-bit groups there).
    let signature = token.rfind('.').unwrap() + 1;
    let at = signature + 1 + data.first().map_or(0, |b| *b as usize) % (token.len() - signature - 2);
    let mut tampered = token.into_bytes();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(keys.check(&tampered).is_err(), "accepted a tampered token");
});
