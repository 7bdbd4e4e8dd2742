-- The schema of Conduit's SQLite database as the migrations (migrations/) leave it: each table
-- with its indexes and triggers, tables by name, each statement as SQLite keeps it.
-- For reading: the migrations are what runs. Generated; tests/schema.rs fails when it is stale.
-- Regenerate: CONDUIT_BLESS_SCHEMA=1 cargo test -p conduit-store-sqlite --test schema

-- account_tokens

CREATE TABLE account_tokens (
    selector      TEXT PRIMARY KEY,
    verifier_hash TEXT NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose       TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'revert')),
    -- The address it was mailed to: a verify token verifies that address only, a reset token
    -- works only while the account still has it; a revert token restores it.
    email         TEXT NOT NULL,
    -- Unix seconds.
    expires_at    INTEGER NOT NULL
, proven BOOLEAN NOT NULL DEFAULT TRUE, issued_at BIGINT NOT NULL DEFAULT 0);

CREATE INDEX account_tokens_revert_email ON account_tokens (email) WHERE purpose = 'revert';

CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

-- article_search

CREATE VIRTUAL TABLE article_search USING fts5(
    title, description, body, tag_list,
    content = 'articles', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- article_search_config

CREATE TABLE 'article_search_config'(k PRIMARY KEY, v) WITHOUT ROWID;

-- article_search_data

CREATE TABLE 'article_search_data'(id INTEGER PRIMARY KEY, block BLOB);

-- article_search_docsize

CREATE TABLE 'article_search_docsize'(id INTEGER PRIMARY KEY, sz BLOB);

-- article_search_idx

CREATE TABLE 'article_search_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;

-- article_tags

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The order the author gave the tags in.
    position   INTEGER NOT NULL,
    PRIMARY KEY (article_id, name)
) WITHOUT ROWID;

CREATE INDEX article_tags_name ON article_tags (name, article_id);

CREATE TRIGGER counts_tag_added AFTER INSERT ON article_tags
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = NEW.article_id) BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('tag', NEW.name, 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_tag_removed AFTER DELETE ON article_tags
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = OLD.article_id) BEGIN
    UPDATE counts SET n = n - 1 WHERE kind = 'tag' AND key = OLD.name AND stripe = 0;
END;

CREATE TRIGGER tags_changed_on_delete AFTER DELETE ON article_tags BEGIN
    UPDATE counts SET n = n + 1 WHERE kind = 'tags_changed' AND key = '' AND stripe = 0;
END;

CREATE TRIGGER tags_changed_on_insert AFTER INSERT ON article_tags BEGIN
    UPDATE counts SET n = n + 1 WHERE kind = 'tags_changed' AND key = '' AND stripe = 0;
END;

-- articles

CREATE TABLE articles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT NOT NULL UNIQUE,
    author_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
, tag_list TEXT NOT NULL DEFAULT '[]', body_html TEXT, title_key TEXT);

CREATE INDEX articles_author ON articles (author_id, id);

CREATE INDEX articles_newest ON articles (id);

CREATE INDEX articles_title_key ON articles (title_key);

CREATE INDEX articles_unrendered ON articles (id) WHERE body_html IS NULL;

CREATE TRIGGER article_search_added AFTER INSERT ON articles BEGIN
    INSERT INTO article_search (rowid, title, description, body, tag_list)
    VALUES (NEW.id, NEW.title, NEW.description, NEW.body, NEW.tag_list);
END;

CREATE TRIGGER article_search_changed AFTER UPDATE OF title, description, body, tag_list ON articles
WHEN OLD.title IS NOT NEW.title OR OLD.description IS NOT NEW.description OR OLD.body IS NOT NEW.body
     OR OLD.tag_list IS NOT NEW.tag_list
BEGIN
    INSERT INTO article_search (article_search, rowid, title, description, body, tag_list)
    VALUES ('delete', OLD.id, OLD.title, OLD.description, OLD.body, OLD.tag_list);
    INSERT INTO article_search (rowid, title, description, body, tag_list)
    VALUES (NEW.id, NEW.title, NEW.description, NEW.body, NEW.tag_list);
END;

CREATE TRIGGER article_search_removed AFTER DELETE ON articles BEGIN
    INSERT INTO article_search (article_search, rowid, title, description, body, tag_list)
    VALUES ('delete', OLD.id, OLD.title, OLD.description, OLD.body, OLD.tag_list);
END;

CREATE TRIGGER counts_article_added AFTER INSERT ON articles BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('articles', '', 0, 1), ('author', CAST(NEW.author_id AS TEXT), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_article_removed AFTER DELETE ON articles BEGIN
    UPDATE counts SET n = n - 1
    WHERE stripe = 0 AND ((kind = 'articles' AND key = '') OR (kind = 'author' AND key = CAST(OLD.author_id AS TEXT)));
END;

CREATE TRIGGER counts_post_day AFTER INSERT ON articles BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('posts_day', substr(NEW.created_at, 1, 10), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER favorite_counts_gone AFTER DELETE ON articles BEGIN
    DELETE FROM favorite_counts WHERE article_id = OLD.id;
END;

-- backup_slots

CREATE TABLE backup_slots (
    slot       BIGINT PRIMARY KEY,
    taken_by   TEXT NOT NULL,
    claimed_at BIGINT NOT NULL
);

-- blocks

CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;

CREATE INDEX blocks_blocked ON blocks (blocked_id);

-- comments

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
, body_html TEXT, hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)));

CREATE INDEX comments_article ON comments (article_id, id);

CREATE INDEX comments_unrendered ON comments (id) WHERE body_html IS NULL;

-- counts

CREATE TABLE counts (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    stripe INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (kind, key, stripe)
) WITHOUT ROWID;

-- favorite_counts

CREATE TABLE favorite_counts (
    article_id INTEGER NOT NULL,
    stripe INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (article_id, stripe)
) WITHOUT ROWID;

-- favorites

CREATE TABLE favorites (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, article_id)
) WITHOUT ROWID;

CREATE INDEX favorites_article ON favorites (article_id);

CREATE TRIGGER counts_favorite_added AFTER INSERT ON favorites
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = NEW.article_id) BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('favorited_by', CAST(NEW.user_id AS TEXT), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_favorite_removed AFTER DELETE ON favorites
WHEN NOT EXISTS (SELECT 1 FROM hidden_articles WHERE article_id = OLD.article_id) BEGIN
    UPDATE counts SET n = n - 1 WHERE kind = 'favorited_by' AND key = CAST(OLD.user_id AS TEXT) AND stripe = 0;
END;

CREATE TRIGGER favorite_counts_down AFTER DELETE ON favorites BEGIN
    UPDATE favorite_counts SET n = n - 1 WHERE article_id = OLD.article_id AND stripe = 0;
END;

CREATE TRIGGER favorite_counts_up AFTER INSERT ON favorites BEGIN
    INSERT INTO favorite_counts (article_id, stripe, n) VALUES (NEW.article_id, 0, 1)
        ON CONFLICT (article_id, stripe) DO UPDATE SET n = n + 1;
END;

-- follows

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (follower_id, followee_id)
) WITHOUT ROWID;

CREATE INDEX follows_followee ON follows (followee_id);

-- hidden_articles

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

-- moderation_log

CREATE TABLE moderation_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    moderator_id INTEGER NOT NULL,
    moderator    TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('dismiss', 'hide', 'unhide', 'delete', 'suspend', 'unsuspend', 'purge', 'role', 'deactivate', 'reactivate', 'requeue', 'backup', 'verify', 'download')),
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('article', 'comment', 'profile', 'mail', 'backup')),
    target_id    INTEGER NOT NULL,
    target       TEXT NOT NULL,
    target_user  TEXT,
    reason       TEXT NOT NULL,
    until_at     INTEGER,
    report_id    INTEGER
);

CREATE INDEX moderation_log_action ON moderation_log (action, id);

CREATE INDEX moderation_log_moderator ON moderation_log (moderator_id, id);

CREATE INDEX moderation_log_target ON moderation_log (target_kind, target_id, id);

CREATE TRIGGER moderation_log_kept BEFORE DELETE ON moderation_log BEGIN
    SELECT RAISE(ABORT, 'the moderation log is append-only');
END;

CREATE TRIGGER moderation_log_unchanged BEFORE UPDATE ON moderation_log BEGIN
    SELECT RAISE(ABORT, 'the moderation log is append-only');
END;

-- notifications

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The recipient; none for a new article, which goes to the author's followers
    -- (`actor_id`) as they are when it is read: one row however many follow.
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('follow', 'comment', 'reply', 'favorite', 'moderation', 'article')),
    actor_id INTEGER,
    article_id INTEGER,
    comment_id INTEGER,
    -- Favorites are grouped: how many others favorited the article before `actor_id` did.
    others INTEGER NOT NULL DEFAULT 0,
    -- A moderation notice's action, and the title of what it was about.
    action TEXT,
    detail TEXT,
    created_at TEXT NOT NULL,
    read_at TEXT,
    CHECK ((kind = 'article') = (user_id IS NULL))
);

CREATE INDEX notifications_articles ON notifications (actor_id, id) WHERE user_id IS NULL;

CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

CREATE INDEX notifications_user ON notifications (user_id, id);

-- notifications_read

CREATE VIEW notifications_read AS
SELECT n.id, n.user_id, n.actor_id, n.kind, u.username AS actor, u.image AS actor_image, a.slug, a.title, n.comment_id,
       substr(c.body, 1, 200) AS excerpt, n.others, n.action, n.detail, n.created_at, n.read_at IS NOT NULL AS is_read,
       (n.actor_id IS NULL OR u.id IS NOT NULL) AND (n.article_id IS NULL OR a.id IS NOT NULL)
           AND (n.comment_id IS NULL OR c.id IS NOT NULL) AS shown
FROM notifications n
LEFT JOIN users u ON u.id = n.actor_id
LEFT JOIN articles a ON a.id = n.article_id
LEFT JOIN comments c ON c.id = n.comment_id;

-- outbox

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    -- Emptied once sent: it may carry a token.
    body            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);

CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';

CREATE INDEX outbox_sent ON outbox (sent_at) WHERE state = 'sent';

-- report_targets

CREATE TABLE report_targets (
    target_kind   TEXT NOT NULL,
    target_id     INTEGER NOT NULL,
    open_reports  INTEGER NOT NULL,
    first_open_id INTEGER NOT NULL,
    PRIMARY KEY (target_kind, target_id)
) WITHOUT ROWID;

CREATE INDEX report_targets_queue ON report_targets (first_open_id) WHERE open_reports > 0;

-- reports

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

CREATE INDEX reports_open_target ON reports (target_kind, target_id, id) WHERE state = 'open';

CREATE INDEX reports_reporter ON reports (reporter_id, id);

-- sessions

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- users

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    bio           TEXT,
    image         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
, role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')), active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)), grace_token_id TEXT, token_version INTEGER NOT NULL DEFAULT 0, ended_sessions TEXT, email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)), suspended_until INTEGER, suspension_reason TEXT, blocking INTEGER NOT NULL DEFAULT 0);

CREATE INDEX users_active_created ON users (active, created_at, id);

CREATE INDEX users_created ON users (created_at, id);

CREATE INDEX users_email_lower ON users (lower(email));

CREATE INDEX users_role_active ON users (role, active, username);

CREATE INDEX users_username_lower ON users (lower(username));

CREATE TRIGGER counts_signup_day AFTER INSERT ON users BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('signups_day', substr(NEW.created_at, 1, 10), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_user_active AFTER UPDATE OF active ON users WHEN NEW.active IS NOT OLD.active BEGIN
    UPDATE counts SET n = n + CASE WHEN NEW.active THEN 1 ELSE -1 END
    WHERE stripe = 0 AND key = '' AND kind = 'users_active';
END;

CREATE TRIGGER counts_user_added AFTER INSERT ON users BEGIN
    UPDATE counts SET n = n + 1
    WHERE stripe = 0 AND key = '' AND (kind = 'users' OR (kind = 'users_active' AND NEW.active));
END;

CREATE TRIGGER counts_user_removed AFTER DELETE ON users BEGIN
    UPDATE counts SET n = n - 1
    WHERE stripe = 0 AND key = '' AND (kind = 'users' OR (kind = 'users_active' AND OLD.active));
END;
