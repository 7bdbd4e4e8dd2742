-- Blocks (issue 26): a user stops seeing another's articles and comments, and the blocked
-- person can no longer follow them or comment on their articles. `users.blocking` counts a
-- user's blocks: a listing by a reader who blocks nobody (nearly every reader) runs the
-- statements it always ran, and a block changes the blocker's row, which every instance hears
-- of and acknowledges before the request returns (as a password change is).
CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks (blocked_id);
ALTER TABLE users ADD COLUMN blocking INTEGER NOT NULL DEFAULT 0;
