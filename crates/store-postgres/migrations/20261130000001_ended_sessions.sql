-- Logging out ends the tokens the session handed out: tokens minted to a browser session name
-- it (`sid`), and a logout adds it here, `[["<sid>", <until>], ...]` as JSON, refused until
-- `until`, when they have all expired anyway. It lives on the user's row so that every cache of
-- users hears of a logout as it hears of any other change.
ALTER TABLE users ADD COLUMN ended_sessions TEXT;
-- The token that changes the password no longer survives for its whole lifetime: at most until
-- the re-authentication window of its login closes. The column now holds "<jti> <until>"; the
-- old unbounded graces end here.
UPDATE users SET grace_token_id = NULL WHERE grace_token_id IS NOT NULL;
