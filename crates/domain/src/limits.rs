//! The limits and messages the rules of every field share: [`crate::names`] parses usernames and
//! emails with them, and [`crate::validation`] (which re-exports them) everything else. A module
//! of its own so that neither of those two imports the other's.

pub const BLANK: &str = "can't be blank";
pub const TAKEN: &str = "has already been taken";

/// Limits, in characters. Generous for real use, small enough that no single row is huge.
pub const USERNAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
/// NIST 800-63B: at least 8, and accept at least 64. Argon2 cost grows with length, so cap it.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 256;
pub const BIO_MAX: usize = 4_096;
pub const IMAGE_MAX: usize = 2_048;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 1_024;
/// The request body limit (1 MiB) bounds the article body; this is the same bound in characters.
pub const BODY_MAX: usize = 1_048_576;
pub const COMMENT_MAX: usize = 65_536;
pub const TAG_MAX: usize = 64;
pub const TAGS_MAX: usize = 32;

pub(crate) fn too_long(max: usize) -> String {
    format!("is too long (maximum is {max} characters)")
}
