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
-- changes its tags), no longer by a trigger per tag row: each of those updates would take the
-- article out of the search index and put it back (five index writes to publish an article of
-- two tags; seeding ran at a fifth of its speed).
DROP TRIGGER tag_list_on_insert;
DROP TRIGGER tag_list_on_delete;

-- The search index: FTS5 over the articles' own columns (external content: the text is not
-- stored twice), words stemmed by Porter's algorithm, accents folded. Its rowid is the
-- article's id, so walking it newest first is walking the doclists backwards (see the shared
-- `search.rs`). `tag_list` is the JSON array of tags, which the tokenizer reads as its words.
CREATE VIRTUAL TABLE article_search USING fts5(
    title, description, body, tag_list,
    content = 'articles', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO article_search (article_search) VALUES ('rebuild');

-- Kept in the same transaction as the article. An external-content index must be told the old
-- text to take out, exactly: hence OLD's columns.
CREATE TRIGGER article_search_added AFTER INSERT ON articles BEGIN
    INSERT INTO article_search (rowid, title, description, body, tag_list)
    VALUES (NEW.id, NEW.title, NEW.description, NEW.body, NEW.tag_list);
END;
CREATE TRIGGER article_search_removed AFTER DELETE ON articles BEGIN
    INSERT INTO article_search (article_search, rowid, title, description, body, tag_list)
    VALUES ('delete', OLD.id, OLD.title, OLD.description, OLD.body, OLD.tag_list);
END;
CREATE TRIGGER article_search_changed AFTER UPDATE OF title, description, body, tag_list ON articles
WHEN OLD.title IS NOT NEW.title OR OLD.description IS NOT NEW.description OR OLD.body IS NOT NEW.body
     OR OLD.tag_list IS NOT NEW.tag_list
BEGIN
    INSERT INTO article_search (article_search, rowid, title, description, body, tag_list)
    VALUES ('delete', OLD.id, OLD.title, OLD.description, OLD.body, OLD.tag_list);
    INSERT INTO article_search (rowid, title, description, body, tag_list)
    VALUES (NEW.id, NEW.title, NEW.description, NEW.body, NEW.tag_list);
END;
