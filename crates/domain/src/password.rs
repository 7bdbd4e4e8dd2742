//! Argon2id password hashing with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1: argon2's defaults). These calls are CPU-bound for tens of
//! milliseconds; callers on an async runtime must run them on a blocking thread.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HashError(String);

/// Hashes with a fresh random salt, giving a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
pub fn hash(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError(format!("password hashing failed: {e}")))
}

/// True when `password` matches `phc`. A malformed stored hash counts as no match.
pub fn verify(password: &str, phc: &str) -> bool {
    check(password, phc).unwrap_or(false)
}

/// Whether `password` matches `phc`, telling a mismatch (`Ok(false)`) from a hash that is not
/// an Argon2 PHC string at all (`Err`). The parameters come from the hash, so hashes made by
/// other Argon2 libraries (e.g. argon2-cffi's m=65536,t=3,p=4) verify too.
pub fn check(password: &str, phc: &str) -> Result<bool, HashError> {
    let parsed = parse(phc)?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(HashError(format!("cannot verify against this hash: {e}"))),
    }
}

/// Checks that `phc` is an Argon2 PHC string this crate can verify against, for importing
/// hashes made elsewhere.
pub fn validate(phc: &str) -> Result<(), HashError> {
    parse(phc).map(drop)
}

fn parse(phc: &str) -> Result<PasswordHash, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|e| HashError(format!("not a PHC string: {e}")))?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(HashError(format!("unsupported algorithm '{}': expected argon2id", parsed.algorithm)));
    }
    Ok(parsed)
}

/// Verifies against a throwaway hash, for logins with an unknown email: the answer takes as
/// long as a real wrong password, so timing does not reveal which emails have accounts.
pub fn verify_nobody(password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a real password, only for timing").unwrap_or_default());
    verify(password, dummy);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify_round_trips_with_owasp_parameters() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("wrong horse", &phc));
    }

    #[test]
    fn check_tells_mismatch_from_malformed() {
        let phc = hash("pw").unwrap();
        assert!(check("pw", &phc).unwrap());
        assert!(!check("other", &phc).unwrap());
        assert!(check("pw", "garbage").unwrap_err().to_string().contains("not a PHC string"));
        let foreign = "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA";
        assert!(check("pw", foreign).is_err());
    }

    #[test]
    fn salts_differ_and_bad_hashes_never_match() {
        assert_ne!(hash("same").unwrap(), hash("same").unwrap());
        assert!(!verify("x", "not a phc string"));
        assert!(!verify_nobody("anything"));
    }
}
