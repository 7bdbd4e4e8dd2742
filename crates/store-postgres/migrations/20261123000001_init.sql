-- Conduit's schema on PostgreSQL. Identity ids only grow, so `ORDER BY id DESC` is newest first
-- and an id in an old token never names a different, later user.

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    email         TEXT NOT NULL CONSTRAINT users_email_key UNIQUE,
    password_hash TEXT NOT NULL,
    bio           TEXT,
    image         TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE follows (
    follower_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (follower_id, followee_id)
);
-- "Who follows this author?" for the following flag; the primary key serves the feed.
CREATE INDEX follows_followee ON follows (followee_id);

CREATE TABLE articles (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        TEXT NOT NULL CONSTRAINT articles_slug_key UNIQUE,
    author_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
-- The author filter and the feed, already in newest-first order.
CREATE INDEX articles_author ON articles (author_id, id);

CREATE TABLE article_tags (
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    -- The order the author gave the tags in.
    position   INT NOT NULL,
    PRIMARY KEY (article_id, name)
);
-- The tag filter, newest first.
CREATE INDEX article_tags_name ON article_tags (name, article_id);

CREATE TABLE favorites (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, article_id)
);
-- favoritesCount; the primary key serves the favorited filter.
CREATE INDEX favorites_article ON favorites (article_id);

CREATE TABLE comments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX comments_article ON comments (article_id, id);
-- Deleting a user cascades to their comments; this keeps that from scanning the table.
CREATE INDEX comments_author ON comments (author_id);
