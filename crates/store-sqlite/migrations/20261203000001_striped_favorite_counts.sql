-- An article's favorite count leaves the article row for a table of its own, as on
-- PostgreSQL, where concurrent favorites of one article queued on that row's lock (see the
-- PostgreSQL migration of the same name). The statements that read it are shared by both
-- backends, so SQLite keeps the same table; its one writer uses stripe 0.
-- SQLite hears of every commit (its WAL index), so no notice is needed for its caches.
CREATE TABLE favorite_counts (
    article_id INTEGER NOT NULL,
    stripe INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (article_id, stripe)
) WITHOUT ROWID;

INSERT INTO favorite_counts (article_id, stripe, n)
    SELECT id, 0, favorites_count FROM articles WHERE favorites_count <> 0;

DROP TRIGGER favorites_count_up;
DROP TRIGGER favorites_count_down;
ALTER TABLE articles DROP COLUMN favorites_count;

CREATE TRIGGER favorite_counts_up AFTER INSERT ON favorites BEGIN
    INSERT INTO favorite_counts (article_id, stripe, n) VALUES (NEW.article_id, 0, 1)
        ON CONFLICT (article_id, stripe) DO UPDATE SET n = n + 1;
END;

-- An update, never an insert: a favorite removed with its article (the foreign key's cascade)
-- leaves nothing behind, whichever of this and `favorite_counts_gone` runs first.
CREATE TRIGGER favorite_counts_down AFTER DELETE ON favorites BEGIN
    UPDATE favorite_counts SET n = n - 1 WHERE article_id = OLD.article_id AND stripe = 0;
END;

CREATE TRIGGER favorite_counts_gone AFTER DELETE ON articles BEGIN
    DELETE FROM favorite_counts WHERE article_id = OLD.id;
END;
