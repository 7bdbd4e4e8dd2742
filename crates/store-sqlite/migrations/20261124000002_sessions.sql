-- Browser sessions (the default session store; with REDIS_URL they live in Redis instead).
-- `data` is the session record as JSON; `expires_at` is in Unix seconds, for expiry sweeps.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expires_at ON sessions (expires_at);
