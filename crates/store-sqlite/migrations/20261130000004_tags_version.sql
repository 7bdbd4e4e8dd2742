-- A number that grows with every change to any article's tags, so a cached tag list can be
-- checked against it with one small read (kind 'tags_changed' in `counts`; only ever added to).
INSERT INTO counts (kind, key, stripe, n) VALUES ('tags_changed', '', 0, 0);

CREATE TRIGGER tags_changed_on_insert AFTER INSERT ON article_tags BEGIN
    UPDATE counts SET n = n + 1 WHERE kind = 'tags_changed' AND key = '' AND stripe = 0;
END;

CREATE TRIGGER tags_changed_on_delete AFTER DELETE ON article_tags BEGIN
    UPDATE counts SET n = n + 1 WHERE kind = 'tags_changed' AND key = '' AND stripe = 0;
END;
