//! The mail Conduit sends: single-use tokens and the messages that carry them. A handler builds
//! an [`Outgoing`] here and hands it to the store with the change that causes it, so the
//! message is queued in the change's transaction; `mail::sender` sends it.
//!
//! A token is `<selector>.<verifier>`, both random and base64url: the store keeps the selector
//! (to find the row) and the SHA-256 of the verifier, which [`Composer::check`] compares in
//! constant time. A copy of the database, or of a sent message's outbox row (its body is
//! emptied once sent), opens no account.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conduit_store::{AccountToken, Mail, NewAccountToken, Outgoing, TokenPurpose};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;

use crate::config::MailSettings;
use crate::ops::metrics::Metrics;

/// What precedes the token in a link: the start of its URL fragment.
const TOKEN_MARK: &str = "#token=";

/// How long each kind of link works.
pub const VERIFY_TTL: Duration = Duration::from_secs(48 * 3600);
/// Under an hour, as a reset link is as good as the password.
pub const RESET_TTL: Duration = Duration::from_secs(30 * 60);
pub const REVERT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

const SELECTOR_BYTES: usize = 12;
const VERIFIER_BYTES: usize = 24;

/// Composes the mail (and the tokens in its links), and rings the bell that wakes this
/// instance's sender when a handler queued something (other instances' senders find it by
/// polling).
pub struct Composer {
    pub settings: MailSettings,
    /// The base of every link, without a trailing slash.
    pub links: String,
    wake: Notify,
}

/// A token made for a mail: the text for the link, and what the store keeps of it.
pub struct IssuedToken {
    pub token: String,
    pub record: NewAccountToken,
}

impl Composer {
    pub fn new(settings: MailSettings, links: String) -> Self {
        Self { settings, links, wake: Notify::new() }
    }

    /// After a change that queued `outgoing` committed: counts it and wakes the sender.
    pub fn queued(&self, metrics: &Metrics, outgoing: &Outgoing) {
        if !outgoing.mails.is_empty() {
            metrics.record_mail("queued", outgoing.mails.len() as u64);
            self.wake.notify_one();
        }
    }

    /// Completes when a handler queued mail (or at once, if one did since the last wait).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// A new token for `purpose`, mailed to `email`.
    pub fn issue(&self, purpose: TokenPurpose, email: &str) -> IssuedToken {
        let ttl = match purpose {
            TokenPurpose::VerifyEmail => VERIFY_TTL,
            TokenPurpose::ResetPassword => RESET_TTL,
            TokenPurpose::RevertEmail => REVERT_TTL,
        };
        let selector = random_text(SELECTOR_BYTES);
        let verifier = random_text(VERIFIER_BYTES);
        let expires_at = chrono::Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        IssuedToken {
            token: format!("{selector}.{verifier}"),
            record: NewAccountToken {
                selector,
                verifier_hash: hash_verifier(&verifier),
                purpose,
                email: email.to_owned(),
                expires_at,
                proven: true,
            },
        }
    }

    /// Whether `verifier` is the one `stored` was issued with, compared in constant time, and
    /// `stored` has not expired by `now` (Unix seconds).
    pub fn check(stored: &AccountToken, verifier: &str, now: i64) -> bool {
        let presented = hash_verifier(verifier);
        let same: bool = presented.as_bytes().ct_eq(stored.verifier_hash.as_bytes()).into();
        same && stored.expires_at > now
    }

    /// A link to the frontend's `page` with `token` in its fragment: a browser never sends a
    /// fragment to any server, so the token stays out of access logs (the frontend's, a
    /// proxy's) and out of the `Referer` of whatever the page loads.
    fn link(&self, page: &str, token: &str) -> String {
        format!("{}/{page}{TOKEN_MARK}{token}", self.links)
    }

    /// Whether a mail's body carries a token (which must not outlive the mail's sending).
    pub fn holds_token(body: &str) -> bool {
        body.contains(TOKEN_MARK)
    }

    /// Registration, a resend, or a new address: the link that verifies `email`.
    pub fn verification(&self, username: &str, email: &str) -> Outgoing {
        let issued = self.issue(TokenPurpose::VerifyEmail, email);
        let body = format!(
            "Hello {username},\n\n\
             please confirm that this is your address by opening this link:\n\n\
             {}\n\n\
             It works once, within {} hours. If you did not sign up for Conduit, ignore this message.\n",
            self.link("verify-email", &issued.token),
            VERIFY_TTL.as_secs() / 3600
        );
        Outgoing {
            tokens: vec![issued.record],
            mails: vec![Mail {
                kind: "verify",
                to: email.into(),
                subject: "Confirm your email for Conduit".into(),
                body,
            }],
        }
    }

    /// A password reset asked for `email`: the link that sets a new password.
    pub fn password_reset(&self, email: &str) -> Outgoing {
        let issued = self.issue(TokenPurpose::ResetPassword, email);
        Outgoing { mails: vec![self.reset_mail(email, &issued.token, "")], tokens: vec![issued.record] }
    }

    /// A reset asked for an address no account can be reset with: said to the address, so that
    /// the request looks like any other, to the counters on `/metrics` too.
    pub fn no_reset(&self, email: &str) -> Mail {
        let body = "Hello,\n\nsomeone (we hope you) asked to reset the password of a Conduit account with this \
                    address, but no account can be reset with it: either none has this address, or the one \
                    that does has not proven it yet. If it was not you, ignore this message.\n"
            .to_owned();
        Mail { kind: "reset", to: email.into(), subject: "Reset your Conduit password".into(), body }
    }

    fn reset_mail(&self, email: &str, token: &str, why: &str) -> Mail {
        let body = format!(
            "Hello,\n\n{why}someone (we hope you) asked to reset the password of the Conduit account with \
             this address. Choose a new password here:\n\n\
             {}\n\n\
             The link works once, within {} minutes, and only the newest link works. If it was not you, \
             ignore this message: your password stays as it is.\n",
            self.link("reset-password", token),
            RESET_TTL.as_secs() / 60
        );
        Mail { kind: "reset", to: email.into(), subject: "Reset your Conduit password".into(), body }
    }

    /// A scheduled backup failed, or could not be verified: a notice to an admin.
    pub fn backup_failed(&self, email: &str, what: &str, error: &str) -> Mail {
        let body = format!(
            "Hello,\n\n\
             the scheduled {what} of your Conduit database failed at {}:\n\n    {error}\n\n\
             The server goes on serving; /health/ready shows the last good backup. Fix the cause, or take a \
             backup by hand with `conduit backup`.\n",
            now_text()
        );
        Mail { kind: "backup-failed", to: email.into(), subject: format!("Conduit: the scheduled {what} failed"), body }
    }

    /// The password of `username` changed (by them, or by a reset): a notice to their address.
    pub fn password_changed(&self, username: &str, email: &str) -> Mail {
        let body = format!(
            "Hello {username},\n\n\
             the password of your Conduit account was changed at {}, and every other session was logged \
             out. If this was not you, reset your password now at {}/reset-password.\n",
            now_text(),
            self.links
        );
        Mail { kind: "password-changed", to: email.into(), subject: "Your Conduit password was changed".into(), body }
    }

    /// The address of `username` changed from `old` to `new`: a notice to the old address with
    /// a link that undoes it, and a verification of the new one.
    pub fn email_changed(&self, username: &str, old: &str, old_proven: bool, new: &str) -> Outgoing {
        let mut revert = self.issue(TokenPurpose::RevertEmail, old);
        revert.record.proven = old_proven;
        let body = format!(
            "Hello {username},\n\n\
             the email address of your Conduit account was changed from {old} to {new} at {}.\n\n\
             If you did not make this change, undo it with this link: it gives the account this address \
             back and logs every session out.\n\n\
             {}\n\n\
             It works once, within {} days.\n",
            now_text(),
            self.link("revert-email", &revert.token),
            REVERT_TTL.as_secs() / 86_400
        );
        let notice = Mail {
            kind: "email-changed",
            to: old.into(),
            subject: "Your Conduit email address was changed".into(),
            body,
        };
        let mut outgoing = self.verification(username, new);
        outgoing.tokens.push(revert.record);
        outgoing.mails.insert(0, notice);
        outgoing
    }

    /// An email change was undone: a notice to the restored address, with a reset link in case
    /// whoever changed it knew the password.
    pub fn email_restored(&self, email: &str) -> Outgoing {
        let issued = self.issue(TokenPurpose::ResetPassword, email);
        let why = "your account has this address again and every session was logged out. In case the \
                   change was made by someone who knew your password: ";
        Outgoing { mails: vec![self.reset_mail(email, &issued.token, why)], tokens: vec![issued.record] }
    }

    /// A moderator suspended an account until `until` (RFC 3339) for `reason`. No recipient:
    /// the store sends it to the suspended user (`ModerationAction::outgoing`).
    pub fn suspended(&self, until: &str, reason: &str) -> Mail {
        let body = format!(
            "Hello,\n\n             a moderator suspended your Conduit account at {} until {until}, for this reason:\n\n    {reason}\n\n             Until then you can log in, read and export your data (GET /api/user/export), but not publish,              comment, favorite or follow.\n",
            now_text()
        );
        Mail { kind: "suspended", to: String::new(), subject: "Your Conduit account was suspended".into(), body }
    }

    /// The account `username` was deleted.
    pub fn account_deleted(&self, username: &str, email: &str) -> Mail {
        let body = format!(
            "Hello {username},\n\n\
             your Conduit account was deleted at {}, as you asked: your profile, follows, favorites and \
             sessions are gone. Nothing more will be sent to this address.\n",
            now_text()
        );
        Mail { kind: "account-deleted", to: email.into(), subject: "Your Conduit account was deleted".into(), body }
    }
}

/// A token from a request: its selector and verifier, if it has the shape of one.
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let (selector, verifier) = token.trim().split_once('.')?;
    let base64url = |s: &str, bytes: usize| {
        s.len() == (bytes * 4).div_ceil(3) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (base64url(selector, SELECTOR_BYTES) && base64url(verifier, VERIFIER_BYTES)).then_some((selector, verifier))
}

pub fn hash_verifier(verifier: &str) -> String {
    Sha256::digest(verifier.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn random_text(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn composer() -> Composer {
        Composer::new(MailSettings::default(), "https://conduit.example".into())
    }

    #[test]
    fn an_issued_token_splits_and_checks_against_what_is_stored() {
        let issued = composer().issue(TokenPurpose::ResetPassword, "a@example.com");
        let (selector, verifier) = split_token(&issued.token).expect("its own shape");
        assert_eq!(selector, issued.record.selector);
        let stored = AccountToken {
            user: conduit_domain::model::UserId::new(1),
            verifier_hash: issued.record.verifier_hash.clone(),
            email: "a@example.com".into(),
            expires_at: issued.record.expires_at,
        };
        let now = chrono::Utc::now().timestamp();
        assert!(Composer::check(&stored, verifier, now));
        assert!(!Composer::check(&stored, &verifier.replace(|c: char| c != 'A', "A"), now));
        assert!(!Composer::check(&stored, verifier, issued.record.expires_at), "expired");
        assert!(issued.record.expires_at - now <= 3600, "a reset link lives under an hour");
        assert!(!issued.record.verifier_hash.contains(verifier), "only a hash is kept");
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        for bad in [
            "",
            ".",
            "abc",
            "a.b",
            "x".repeat(200).as_str(),
            "aaaaaaaaaaaaaaaa.bbbb",
            "aaaaaaaaaaaaaaa!.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        ] {
            assert!(split_token(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn mails_carry_their_links() {
        let outgoing = composer().email_changed("jake", "old@example.com", true, "new@example.com");
        assert_eq!(outgoing.mails.len(), 2);
        assert_eq!(
            (outgoing.mails[0].to.as_str(), outgoing.mails[1].to.as_str()),
            ("old@example.com", "new@example.com")
        );
        assert!(outgoing.mails[0].body.contains("https://conduit.example/revert-email#token="));
        assert!(outgoing.mails[1].body.contains("https://conduit.example/verify-email#token="));
        let purposes: Vec<_> = outgoing.tokens.iter().map(|t| (t.purpose, t.email.as_str())).collect();
        assert_eq!(
            purposes,
            [(TokenPurpose::VerifyEmail, "new@example.com"), (TokenPurpose::RevertEmail, "old@example.com")]
        );
    }
}
