-- An admin's actions on the site itself go into the moderation log too, with who made them
-- (issue 28): dead mail requeued ('requeue', target kind 'mail': the message, or 0 for every
-- dead one) and backups taken, verified and downloaded ('backup', 'verify', 'download', target
-- kind 'backup': the file's name). Both CHECKs are loosened by editing the schema's text, as
-- 20261209000001 did for the users' roles (see there why a table rebuild cannot be done here);
-- the table made and dropped after it bumps the schema's version, so every other connection
-- reads it again.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(
        replace(sql, '''deactivate'', ''reactivate''))',
                '''deactivate'', ''reactivate'', ''requeue'', ''backup'', ''verify'', ''download''))'),
        'CHECK (target_kind IN (''article'', ''comment'', ''profile''))',
        'CHECK (target_kind IN (''article'', ''comment'', ''profile'', ''mail'', ''backup''))')
WHERE type = 'table' AND name = 'moderation_log';
PRAGMA writable_schema = RESET;
-- Stops the migration if either text was not found (a schema edited by hand): the CHECK fails.
CREATE TEMP TABLE operations_added (added INTEGER CHECK (added = 1));
INSERT INTO operations_added
SELECT instr(sql, '''download''))') > 0 AND instr(sql, '''mail'', ''backup''))') > 0
FROM sqlite_schema WHERE name = 'moderation_log';
DROP TABLE operations_added;
CREATE TABLE schema_version_bump (x INTEGER);
DROP TABLE schema_version_bump;
