-- Issue 27: bodies rendered to safe HTML once, at write time, and full-text search.

-- The Markdown of `body` as sanitized HTML (conduit_domain::markdown), written with the body.
-- NULL only for rows older than this migration until the store renders them after migrating
-- (`render_missing_html`, which finds them through these partial indexes: empty once done, so
-- the check at each start costs nothing).
ALTER TABLE articles ADD COLUMN body_html TEXT;
ALTER TABLE comments ADD COLUMN body_html TEXT;
CREATE INDEX articles_unrendered ON articles (id) WHERE body_html IS NULL;
CREATE INDEX comments_unrendered ON comments (id) WHERE body_html IS NULL;

-- The tag list is written by the store with the article (in its INSERT, and in the UPDATE that
-- changes its tags), no longer by a trigger per tag row: each of those updates would compute the
-- search document below again and write a new row version.
DROP TRIGGER tag_list ON article_tags;
DROP FUNCTION articles_tag_list();

-- Rendering old rows changes no column a cache keeps from before: it must not notify every
-- instance once per article. The columns that matter are named instead.
DROP TRIGGER articles_notify_changed ON articles;
CREATE TRIGGER articles_notify_changed
    AFTER UPDATE OF slug, author_id, title, description, body, tag_list, updated_at OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION notify_article_changed();

-- The search document, weighted: title A, description B, body and tags C (ts_rank's weights
-- then rank a title match above a description's above the body's). Generated, so it changes in
-- the same statement as the article, and a backup never carries it (restores compute it).
-- `||` numbers the right side's words on from the left side's last: the leading stop word
-- ('the ', dropped but counted) leaves a gap, so a phrase never spans two fields (as in FTS5,
-- where each is its own column). The tags are read as their JSON text, as FTS5 reads them.
ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A')
    || setweight(to_tsvector('english', 'the ' || description), 'B')
    || setweight(to_tsvector('english', 'the ' || body), 'C')
    || setweight(to_tsvector('english', 'the ' || tag_list::text), 'C')
) STORED;
CREATE INDEX articles_search ON articles USING gin (search);
