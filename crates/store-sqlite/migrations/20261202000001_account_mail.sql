-- The account lifecycle by mail: verified addresses, single-use tokens, and the outbox.

-- Whether the person proved they read mail at `email` (a verification link, or a password reset,
-- which reaches the same inbox). An email change clears it.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));

-- Single-use tokens mailed to a person: verify an address, reset a password, undo an email
-- change. A token is `<selector>.<verifier>`: the selector finds the row; the verifier is kept
-- only as its SHA-256, compared in constant time, so a copy of this table opens nothing. A new
-- token replaces the user's earlier ones of its purpose.
CREATE TABLE account_tokens (
    selector      TEXT PRIMARY KEY,
    verifier_hash TEXT NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'revert')),
    -- The address it was mailed to: a verify token verifies that address only, a reset token
    -- works only while the account still has it; a revert token restores it.
    email         TEXT NOT NULL,
    -- Unix seconds.
    expires_at    INTEGER NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

-- Mail to send, written in the transaction of the change that causes it, so a committed change
-- always has its mail and a rolled-back one never does. A sender claims a queued message by
-- moving `next_attempt_at` past the time a send may take (its lease): should the sender die,
-- the message is due again once the lease ends. Times are Unix milliseconds.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    -- Emptied once sent: it may carry a token.
    body            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
-- What is due, soonest first; sent and dead messages stay out of it.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';
