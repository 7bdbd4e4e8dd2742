-- Each listed article used to cost two subqueries (its favorite count and its tag list as
-- JSON). Both now live on the article row, kept right by triggers in the same transaction as
-- the change, so no code path can let them drift. The tag lists aggregate an ordered subquery
-- (SQLite never flattens an ORDER BY subquery into an aggregate, so the order holds) rather
-- than `json_group_array(... ORDER BY ...)`, which needs SQLite 3.44 and the schema is also
-- built by older ones (scripts/sqlx-prepare uses Python's).

ALTER TABLE articles ADD COLUMN favorites_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE articles ADD COLUMN tag_list TEXT NOT NULL DEFAULT '[]';

UPDATE articles SET
    favorites_count = (SELECT count(*) FROM favorites f WHERE f.article_id = articles.id),
    tag_list = (SELECT json_group_array(name) FROM
                   (SELECT name FROM article_tags WHERE article_id = articles.id ORDER BY position));

CREATE TRIGGER favorites_count_up AFTER INSERT ON favorites BEGIN
    UPDATE articles SET favorites_count = favorites_count + 1 WHERE id = NEW.article_id;
END;

CREATE TRIGGER favorites_count_down AFTER DELETE ON favorites BEGIN
    UPDATE articles SET favorites_count = favorites_count - 1 WHERE id = OLD.article_id;
END;

CREATE TRIGGER tag_list_on_insert AFTER INSERT ON article_tags BEGIN
    UPDATE articles SET tag_list = (SELECT json_group_array(name) FROM
                                       (SELECT name FROM article_tags WHERE article_id = NEW.article_id
                                        ORDER BY position))
    WHERE id = NEW.article_id;
END;

CREATE TRIGGER tag_list_on_delete AFTER DELETE ON article_tags BEGIN
    UPDATE articles SET tag_list = (SELECT json_group_array(name) FROM
                                       (SELECT name FROM article_tags WHERE article_id = OLD.article_id
                                        ORDER BY position))
    WHERE id = OLD.article_id;
END;
