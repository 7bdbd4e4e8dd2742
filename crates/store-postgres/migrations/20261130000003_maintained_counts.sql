-- The counts every listing shows (`articlesCount`) and the tag list, kept by triggers in the
-- writing transaction, so a page reads a handful of rows instead of counting every match
-- (at a million articles, `count(*)` of a listing walked a million index entries per request).
--
-- One table for every count: `kind` says what is counted, `key` of what ('' for all articles;
-- a tag's name; a user's id as text for the articles they wrote or favorited). A count is the
-- sum of its `stripe`s: each writer adds to the stripe of its connection (backend pid mod 16),
-- so concurrent writers do not queue on one row's lock until commit, as they would on a
-- single counter of all articles or of a popular tag. Kept in its own table, not on `users`:
-- an update of a user row sends a change notice, which takes a database-wide lock at commit
-- and drops that user from every instance's cache.
CREATE TABLE counts (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    stripe INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (kind, key, stripe)
);

INSERT INTO counts (kind, key, stripe, n) SELECT 'articles', '', 0, count(*) FROM articles;
INSERT INTO counts (kind, key, stripe, n) SELECT 'tag', name, 0, count(*) FROM article_tags GROUP BY name;
INSERT INTO counts (kind, key, stripe, n)
    SELECT 'author', author_id::text, 0, count(*) FROM articles GROUP BY author_id;
INSERT INTO counts (kind, key, stripe, n)
    SELECT 'favorited_by', user_id::text, 0, count(*) FROM favorites GROUP BY user_id;

CREATE FUNCTION count_add(count_kind TEXT, count_key TEXT, delta BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO counts (kind, key, stripe, n) VALUES (count_kind, count_key, pg_backend_pid() % 16, delta)
    ON CONFLICT (kind, key, stripe) DO UPDATE SET n = counts.n + EXCLUDED.n
$$;

CREATE FUNCTION counts_articles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('articles', '', 1);
        PERFORM count_add('author', NEW.author_id::text, 1);
    ELSE
        PERFORM count_add('articles', '', -1);
        PERFORM count_add('author', OLD.author_id::text, -1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER counts_articles AFTER INSERT OR DELETE ON articles FOR EACH ROW EXECUTE FUNCTION counts_articles();

CREATE FUNCTION counts_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('tag', NEW.name, 1);
    ELSE
        PERFORM count_add('tag', OLD.name, -1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER counts_tags AFTER INSERT OR DELETE ON article_tags FOR EACH ROW EXECUTE FUNCTION counts_tags();

CREATE FUNCTION counts_favorites() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('favorited_by', NEW.user_id::text, 1);
    ELSE
        PERFORM count_add('favorited_by', OLD.user_id::text, -1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER counts_favorites AFTER INSERT OR DELETE ON favorites FOR EACH ROW EXECUTE FUNCTION counts_favorites();
