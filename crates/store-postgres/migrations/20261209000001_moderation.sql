-- Moderation (issue 26): a moderator role, suspensions, hidden articles and comments, reports
-- gathered by what they report, and the append-only moderation log.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'moderator', 'admin'));
-- A suspended user can log in, read and export, not write, until this time (Unix seconds).
ALTER TABLE users ADD COLUMN suspended_until BIGINT;
ALTER TABLE users ADD COLUMN suspension_reason TEXT;

-- A hidden comment is left out of its thread for everyone but its author and moderators. A
-- thread reads its rows anyway, so a column costs nothing there.
ALTER TABLE comments ADD COLUMN hidden BOOLEAN NOT NULL DEFAULT FALSE;

-- Hidden articles, in a table of their own rather than a column: a listing walks an index
-- (the newest ids, a tag's, an author's) without reading the articles, and a check against this
-- small table (a hashed `NOT IN`, built once per statement) keeps it so. A hidden article
-- leaves the maintained counts (it is listed nowhere) and comes back to them when shown again;
-- the store shows it again before deleting it, so its delete takes off what its insert added.
CREATE TABLE hidden_articles (
    article_id BIGINT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    hidden_at  TIMESTAMPTZ NOT NULL
);
CREATE FUNCTION counts_hidden() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    article BIGINT := CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END;
    delta BIGINT := CASE WHEN TG_OP = 'INSERT' THEN -1 ELSE 1 END;
    author BIGINT;
BEGIN
    SELECT author_id INTO author FROM articles WHERE id = article;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM count_add('articles', '', delta);
    PERFORM count_add('author', author::text, delta);
    PERFORM count_add('tag', t.name, delta) FROM article_tags t WHERE t.article_id = article;
    PERFORM count_add('favorited_by', f.user_id::text, delta) FROM favorites f WHERE f.article_id = article;
    PERFORM count_add('tags_changed', '', 1);
    RETURN NULL;
END
$$;
CREATE TRIGGER counts_hidden AFTER INSERT OR DELETE ON hidden_articles FOR EACH ROW EXECUTE FUNCTION counts_hidden();

-- While an article is hidden, its tags and favorites change no count (they are not counted).
CREATE OR REPLACE FUNCTION counts_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM hidden_articles h
               WHERE h.article_id = CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('tag', NEW.name, 1);
    ELSE
        PERFORM count_add('tag', OLD.name, -1);
    END IF;
    PERFORM count_add('tags_changed', '', 1);
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION counts_favorites() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM hidden_articles h
               WHERE h.article_id = CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('favorited_by', NEW.user_id::text, 1);
    ELSE
        PERFORM count_add('favorited_by', OLD.user_id::text, -1);
    END IF;
    RETURN NULL;
END
$$;

-- Reports: one open report per reporter and target. A report outlives its reporter's account
-- (reporter_id is then NULL), so the queue's counts stay true.
CREATE TABLE reports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reporter_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('article', 'comment', 'profile')),
    target_id   BIGINT NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('spam', 'harassment', 'illegal', 'other')),
    details     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'dismissed', 'actioned')),
    resolved_at TIMESTAMPTZ,
    -- The moderation log entry that answered it.
    log_id      BIGINT
);
CREATE UNIQUE INDEX reports_open_once ON reports (reporter_id, target_kind, target_id) WHERE state = 'open';
CREATE INDEX reports_reporter ON reports (reporter_id, id);
CREATE INDEX reports_open_target ON reports (target_kind, target_id, id) WHERE state = 'open';

-- The queue: one row per reported target, with how many reports are open and the oldest
-- open one (the queue's order), kept with each report and each answer. A thousand reports of
-- one article are one entry with a count.
CREATE TABLE report_targets (
    target_kind   TEXT NOT NULL,
    target_id     BIGINT NOT NULL,
    open_reports  BIGINT NOT NULL,
    first_open_id BIGINT NOT NULL,
    PRIMARY KEY (target_kind, target_id)
);
CREATE INDEX report_targets_queue ON report_targets (first_open_id) WHERE open_reports > 0;

-- Every moderator action: who, what, to which target (named as it was then, so the entry
-- outlives it), why, and the report it answered. Written in the action's transaction; never
-- changed or deleted (the trigger refuses).
CREATE TABLE moderation_log (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    moderator_id BIGINT NOT NULL,
    moderator    TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('dismiss', 'hide', 'unhide', 'delete', 'suspend', 'unsuspend', 'purge')),
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('article', 'comment', 'profile')),
    target_id    BIGINT NOT NULL,
    target       TEXT NOT NULL,
    target_user  TEXT,
    reason       TEXT NOT NULL,
    until_at     BIGINT,
    report_id    BIGINT
);
CREATE INDEX moderation_log_target ON moderation_log (target_kind, target_id, id);
CREATE INDEX moderation_log_moderator ON moderation_log (moderator_id, id);
CREATE INDEX moderation_log_action ON moderation_log (action, id);
CREATE FUNCTION moderation_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the moderation log is append-only';
END
$$;
CREATE TRIGGER moderation_log_append_only BEFORE UPDATE OR DELETE ON moderation_log
    FOR EACH ROW EXECUTE FUNCTION moderation_log_append_only();
