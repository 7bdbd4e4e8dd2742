-- Conduit's schema on SQLite. Timestamps are RFC 3339 text written by the application (with
-- microseconds), so they sort as they read. AUTOINCREMENT keeps ids from ever being reused:
-- tokens name users by id, and listings order articles by id (newest first).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    bio           TEXT,
    image         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (follower_id, followee_id)
) WITHOUT ROWID;
-- "Who follows this author?" for the following flag; the primary key serves the feed.
CREATE INDEX follows_followee ON follows (followee_id);

CREATE TABLE articles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    slug        TEXT NOT NULL UNIQUE,
    author_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
-- The author filter and the feed, already in newest-first order.
CREATE INDEX articles_author ON articles (author_id, id);

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The order the author gave the tags in.
    position   INTEGER NOT NULL,
    PRIMARY KEY (article_id, name)
) WITHOUT ROWID;
-- The tag filter, newest first.
CREATE INDEX article_tags_name ON article_tags (name, article_id);

CREATE TABLE favorites (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, article_id)
) WITHOUT ROWID;
-- favoritesCount; the primary key serves the favorited filter.
CREATE INDEX favorites_article ON favorites (article_id);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX comments_article ON comments (article_id, id);
