-- Accounts: a role (user or admin), an active flag, and a token version. Every token carries
-- the version it was minted under; bumping it (password change, deactivation) revokes them all,
-- except the one token (by its id) that changed the password: it survives.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user' CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'));
ALTER TABLE users ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN grace_token_id TEXT;
ALTER TABLE users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;
-- The admin listing: oldest first, all users or only active or inactive ones.
CREATE INDEX users_created ON users (created_at, id);
CREATE INDEX users_active_created ON users (active, created_at, id);
