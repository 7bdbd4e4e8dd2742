-- Scheduled backups (CONDUIT_BACKUP_DIR): one row per interval that was backed up, numbered
-- from the epoch. The instance whose insert makes the row takes that backup, so of several
-- instances sharing a database exactly one does.
CREATE TABLE backup_slots (
    slot       BIGINT PRIMARY KEY,
    taken_by   TEXT NOT NULL,
    claimed_at BIGINT NOT NULL
);
