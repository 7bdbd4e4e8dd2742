-- Account changes by admins (a role given, a deactivation, a reactivation) go into the
-- moderation log too, with who made them: its action list gains 'role', 'deactivate' and
-- 'reactivate'. The CHECK is loosened by editing the schema's text, as 20261209000001 did for
-- the users' roles (see there why a table rebuild cannot be done here); the table made and
-- dropped after it bumps the schema's version, so every other connection reads it again.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''unsuspend'', ''purge''))', '''unsuspend'', ''purge'', ''role'', ''deactivate'', ''reactivate''))')
WHERE type = 'table' AND name = 'moderation_log';
PRAGMA writable_schema = RESET;
-- Stops the migration if the text was not found (a schema edited by hand): the CHECK fails.
CREATE TEMP TABLE account_actions_added (added INTEGER CHECK (added = 1));
INSERT INTO account_actions_added SELECT instr(sql, '''reactivate''') > 0 FROM sqlite_schema WHERE name = 'moderation_log';
DROP TABLE account_actions_added;
CREATE TABLE schema_version_bump (x INTEGER);
DROP TABLE schema_version_bump;
