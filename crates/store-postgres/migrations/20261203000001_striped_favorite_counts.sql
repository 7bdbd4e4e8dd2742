-- An article's favorite count leaves the article row. Kept there (20261124000003), every
-- favorite of one article updated that one row and held its lock until commit, WAL flush
-- included, so 64 clients favoriting a popular article queued one behind another (342 req/s
-- at a million articles against 1,596 for favorites spread over many). Now a count is the
-- sum of up to 16 stripes, as in `counts` (20261130000003): each writer adds to the stripe
-- of its connection, and writers of different stripes never wait for each other.
--
-- No foreign key to `articles`: checking one takes a share lock on the article row for each
-- count written, which is the queue this removes. Instead an article's stripes go with it
-- (trigger below), and a favorite removed because its article is being deleted adds nothing.
CREATE TABLE favorite_counts (
    article_id BIGINT NOT NULL,
    stripe INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (article_id, stripe)
);

INSERT INTO favorite_counts (article_id, stripe, n)
    SELECT id, 0, favorites_count FROM articles WHERE favorites_count <> 0;

DROP TRIGGER favorites_count ON favorites;
DROP FUNCTION articles_favorites_count();
ALTER TABLE articles DROP COLUMN favorites_count;

-- Each instance caches anonymous views of articles, favorite count included, and hears of
-- changes through `conduit_article_changed` (20261124000005). The count no longer changes the
-- article row, so the favorite itself tells, by the same rule: not for an article made by
-- this same transaction, which nobody can have cached.
CREATE FUNCTION favorite_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    article BIGINT := CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END;
    delta BIGINT := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    article_slug TEXT;
    made_here BOOLEAN;
BEGIN
    SELECT a.slug, a.xmin = pg_current_xact_id()::xid INTO article_slug, made_here
    FROM articles a WHERE a.id = article;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO favorite_counts (article_id, stripe, n) VALUES (article, pg_backend_pid() % 16, delta)
        ON CONFLICT (article_id, stripe) DO UPDATE SET n = favorite_counts.n + EXCLUDED.n;
    IF NOT made_here THEN
        PERFORM pg_notify('conduit_article_changed', article_slug);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER favorite_counts AFTER INSERT OR DELETE ON favorites
    FOR EACH ROW EXECUTE FUNCTION favorite_counts_add();

CREATE FUNCTION favorite_counts_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM favorite_counts WHERE article_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER favorite_counts_gone AFTER DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION favorite_counts_gone();
