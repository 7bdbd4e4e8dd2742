-- Each listed article used to cost two subqueries (its favorite count and its tag list as
-- JSON). Both now live on the article row, kept right by triggers in the same transaction as
-- the change, so no code path can let them drift. Concurrent favorites of one article
-- serialise on its row for the increment, which READ COMMITTED re-reads: no lost updates.

ALTER TABLE articles
    ADD COLUMN favorites_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN tag_list JSONB NOT NULL DEFAULT '[]';

UPDATE articles a SET
    favorites_count = (SELECT count(*) FROM favorites f WHERE f.article_id = a.id),
    tag_list = COALESCE((SELECT jsonb_agg(t.name ORDER BY t.position) FROM article_tags t
                         WHERE t.article_id = a.id), '[]');

CREATE FUNCTION articles_favorites_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE articles SET favorites_count = favorites_count + 1 WHERE id = NEW.article_id;
    ELSE
        UPDATE articles SET favorites_count = favorites_count - 1 WHERE id = OLD.article_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER favorites_count AFTER INSERT OR DELETE ON favorites
    FOR EACH ROW EXECUTE FUNCTION articles_favorites_count();

CREATE FUNCTION articles_tag_list() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    article BIGINT := CASE WHEN TG_OP = 'DELETE' THEN OLD.article_id ELSE NEW.article_id END;
BEGIN
    UPDATE articles SET tag_list = COALESCE((SELECT jsonb_agg(t.name ORDER BY t.position) FROM article_tags t
                                             WHERE t.article_id = article), '[]')
    WHERE id = article;
    RETURN NULL;
END $$;

CREATE TRIGGER tag_list AFTER INSERT OR UPDATE OR DELETE ON article_tags
    FOR EACH ROW EXECUTE FUNCTION articles_tag_list();
