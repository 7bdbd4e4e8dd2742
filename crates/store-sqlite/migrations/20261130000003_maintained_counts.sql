-- The counts every listing shows (`articlesCount`) and the tag list, kept by triggers in the
-- writing transaction, so a page reads a handful of rows instead of counting every match
-- (at a million articles, `count(*)` of a listing walked a million index entries per request).
--
-- One table for every count: `kind` says what is counted, `key` of what ('' for all articles;
-- a tag's name; a user's id as text for the articles they wrote or favorited). `stripe` lets
-- PostgreSQL's concurrent writers add to different rows of one count (its triggers pick the
-- stripe by connection); SQLite has one writer and uses stripe 0. A count is the sum of its
-- stripes. Kept in its own table, not on `users`: an update of a user row is a change notice
-- and drops that user from every instance's cache.
CREATE TABLE counts (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    stripe INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (kind, key, stripe)
) WITHOUT ROWID;

INSERT INTO counts (kind, key, stripe, n) SELECT 'articles', '', 0, count(*) FROM articles;
INSERT INTO counts (kind, key, stripe, n) SELECT 'tag', name, 0, count(*) FROM article_tags GROUP BY name;
INSERT INTO counts (kind, key, stripe, n)
    SELECT 'author', CAST(author_id AS TEXT), 0, count(*) FROM articles GROUP BY author_id;
INSERT INTO counts (kind, key, stripe, n)
    SELECT 'favorited_by', CAST(user_id AS TEXT), 0, count(*) FROM favorites GROUP BY user_id;

CREATE TRIGGER counts_article_added AFTER INSERT ON articles BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('articles', '', 0, 1), ('author', CAST(NEW.author_id AS TEXT), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_article_removed AFTER DELETE ON articles BEGIN
    UPDATE counts SET n = n - 1
    WHERE stripe = 0 AND ((kind = 'articles' AND key = '') OR (kind = 'author' AND key = CAST(OLD.author_id AS TEXT)));
END;

CREATE TRIGGER counts_tag_added AFTER INSERT ON article_tags BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('tag', NEW.name, 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_tag_removed AFTER DELETE ON article_tags BEGIN
    UPDATE counts SET n = n - 1 WHERE kind = 'tag' AND key = OLD.name AND stripe = 0;
END;

CREATE TRIGGER counts_favorite_added AFTER INSERT ON favorites BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('favorited_by', CAST(NEW.user_id AS TEXT), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER counts_favorite_removed AFTER DELETE ON favorites BEGIN
    UPDATE counts SET n = n - 1 WHERE kind = 'favorited_by' AND key = CAST(OLD.user_id AS TEXT) AND stripe = 0;
END;
