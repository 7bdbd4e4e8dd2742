-- "Is this the last active admin?" is asked under a lock on every role or active-flag change;
-- without an index on role it scanned every active user (137-174 ms at a million users).
CREATE INDEX users_role_active ON users (role, active, username);
