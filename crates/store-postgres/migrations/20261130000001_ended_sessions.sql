-- A password change now ends every earlier token, the one that made it included: the one-token
-- grace (`grace_token_id`) is gone. Its column becomes the list of browser sessions ended by a
-- logout, `[["<sid>", <until>], ...]` as JSON: tokens minted to such a session name it (`sid`)
-- and are refused until `until`, when they have all expired anyway. It lives on the user's row
-- so that every cache of users hears of a logout as it hears of any other change.
ALTER TABLE users RENAME COLUMN grace_token_id TO ended_sessions;
UPDATE users SET ended_sessions = NULL WHERE ended_sessions IS NOT NULL;
