-- Moderation (issue 26): a moderator role, suspensions, hidden articles and comments, reports
-- gathered by what they report, and the append-only moderation log.

-- A suspended user can log in, read and export, not write, until this time (Unix seconds).
ALTER TABLE users ADD COLUMN suspended_until INTEGER;
ALTER TABLE users ADD COLUMN suspension_reason TEXT;

-- The role's CHECK gains 'moderator'. SQLite cannot alter a constraint, and rebuilding `users`
-- needs foreign keys off, which cannot be switched inside the transaction a migration runs in
-- (with them on, dropping the old table would cascade into every article). Loosening a CHECK
-- is the case https://sqlite.org/lang_altertable.html#otheralter allows editing the schema's
-- text for: nothing stored changes. It comes after the ADD COLUMNs (an ADD COLUMN edits the
-- text at offsets it computed from the text it parsed), RESET makes this connection parse it
-- again, and the CREATE TABLEs below bump the schema's version, so every other connection does.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (role IN (''user'', ''admin''))', 'CHECK (role IN (''user'', ''moderator'', ''admin''))')
WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = RESET;
-- Stops the migration if the text was not found (a schema edited by hand): the CHECK fails.
CREATE TEMP TABLE moderator_role_added (added INTEGER CHECK (added = 1));
INSERT INTO moderator_role_added SELECT instr(sql, '''moderator''') > 0 FROM sqlite_schema WHERE name = 'users';
DROP TABLE moderator_role_added;

-- A hidden comment is left out of its thread for everyone but its author and moderators. A
-- thread reads its rows anyway, so a column costs nothing there.
ALTER TABLE comments ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1));

-- Hidden articles, in a table of their own rather than a column: a listing walks an index
-- (the newest ids, a tag's, an author's) without reading the articles, and a check against this
-- small table (`id NOT IN (SELECT article_id FROM hidden_articles)`, built once per statement)
-- keeps it so. A hidden article leaves the maintained counts (it is listed nowhere) and comes
-- back to them when shown again; the store shows it again before deleting it, so its delete
-- takes off what its insert added.
CREATE TABLE hidden_articles (
    article_id INTEGER PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    hidden_at  TEXT NOT NULL
);
CREATE TRIGGER counts_article_hidden AFTER INSERT ON hidden_articles BEGIN
    UPDATE counts SET n = n - 1 WHERE stripe = 0 AND (
        (kind = 'articles' AND key = '')
        OR (kind = 'author' AND key = (SELECT CAST(author_id AS TEXT) FROM articles WHERE id = NEW.article_id))
        OR (kind = 'tag' AND key IN (SELECT name FROM article_tags WHERE article_id = NEW.article_id))
        OR (kind = 'favorited_by' AND key IN (SELECT CAST(user_id AS TEXT) FROM favorites WHERE article_id = NEW.article_id)));
    UPDATE counts SET n = n + 1 WHERE kind = 'tags_changed' AND key = '' AND stripe = 0;
END;
-- Shown again, it is counted again; a tag or favorite it gained while hidden has no row yet.
CREATE TRIGGER counts_article_shown AFTER DELETE ON hidden_articles BEGIN
    INSERT INTO counts (kind, key, stripe, n)
    SELECT kind, key, 0, 1 FROM (
        SELECT 'articles' AS kind, '' AS key FROM articles WHERE id = OLD.article_id
        UNION ALL SELECT 'author', CAST(author_id AS TEXT) FROM articles WHERE id = OLD.article_id
        UNION ALL SELECT 'tag', name FROM article_tags WHERE article_id = OLD.article_id
        UNION ALL SELECT 'favorited_by', CAST(user_id AS TEXT) FROM favorites WHERE article_id = OLD.article_id
    ) WHERE TRUE
    ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
    UPDATE counts SET n = n + 1 WHERE kind = 'tags_changed' AND key = '' AND stripe = 0;
END;
-- While an article is hidden, its tags and favorites change no count (they are not counted).
DROP TRIGGER counts_tag_added;
CREATE TRIGGER counts_tag_added AFTER INSERT ON article_tags
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = NEW.article_id) BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('tag', NEW.name, 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;
DROP TRIGGER counts_tag_removed;
CREATE TRIGGER counts_tag_removed AFTER DELETE ON article_tags
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = OLD.article_id) BEGIN
    UPDATE counts SET n = n - 1 WHERE kind = 'tag' AND key = OLD.name AND stripe = 0;
END;
DROP TRIGGER counts_favorite_added;
CREATE TRIGGER counts_favorite_added AFTER INSERT ON favorites
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = NEW.article_id) BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('favorited_by', CAST(NEW.user_id AS TEXT), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;
DROP TRIGGER counts_favorite_removed;
CREATE TRIGGER counts_favorite_removed AFTER DELETE ON favorites
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = OLD.article_id) BEGIN
    UPDATE counts SET n = n - 1 WHERE kind = 'favorited_by' AND key = CAST(OLD.user_id AS TEXT) AND stripe = 0;
END;

-- Reports: one open report per reporter and target. A report outlives its reporter's account
-- (reporter_id is then NULL), so the queue's counts stay true.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('article', 'comment', 'profile')),
    target_id   INTEGER NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('spam', 'harassment', 'illegal', 'other')),
    details     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'dismissed', 'actioned')),
    resolved_at TEXT,
    -- The moderation log entry that answered it.
    log_id      INTEGER
);
CREATE UNIQUE INDEX reports_open_once ON reports (reporter_id, target_kind, target_id) WHERE state = 'open';
CREATE INDEX reports_reporter ON reports (reporter_id, id);
CREATE INDEX reports_open_target ON reports (target_kind, target_id, id) WHERE state = 'open';

-- The queue: one row per reported target, with how many reports are open and the oldest
-- open one (the queue's order), kept with each report and each answer. A thousand reports of
-- one article are one entry with a count.
CREATE TABLE report_targets (
    target_kind   TEXT NOT NULL,
    target_id     INTEGER NOT NULL,
    open_reports  INTEGER NOT NULL,
    first_open_id INTEGER NOT NULL,
    PRIMARY KEY (target_kind, target_id)
) WITHOUT ROWID;
CREATE INDEX report_targets_queue ON report_targets (first_open_id) WHERE open_reports > 0;

-- Every moderator action: who, what, to which target (named as it was then, so the entry
-- outlives it), why, and the report it answered. Written in the action's transaction; never
-- changed or deleted (the triggers refuse).
CREATE TABLE moderation_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    moderator_id INTEGER NOT NULL,
    moderator    TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('dismiss', 'hide', 'unhide', 'delete', 'suspend', 'unsuspend', 'purge')),
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('article', 'comment', 'profile')),
    target_id    INTEGER NOT NULL,
    target       TEXT NOT NULL,
    target_user  TEXT,
    reason       TEXT NOT NULL,
    until_at     INTEGER,
    report_id    INTEGER
);
CREATE INDEX moderation_log_target ON moderation_log (target_kind, target_id, id);
CREATE INDEX moderation_log_moderator ON moderation_log (moderator_id, id);
CREATE INDEX moderation_log_action ON moderation_log (action, id);
CREATE TRIGGER moderation_log_unchanged BEFORE UPDATE ON moderation_log BEGIN
    SELECT RAISE(ABORT, 'the moderation log is append-only');
END;
CREATE TRIGGER moderation_log_kept BEFORE DELETE ON moderation_log BEGIN
    SELECT RAISE(ABORT, 'the moderation log is append-only');
END;
