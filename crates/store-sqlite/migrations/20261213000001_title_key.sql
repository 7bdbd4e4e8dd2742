-- Search (issue 27): each article's title as the words a search for it is typed as
-- (`conduit_domain::search::title_key`: lowercased, letters and digits, one space apart),
-- written with the title. A search whose words are exactly a title finds that article through
-- this index, however old, and ranks it first: the walk of a query's newest 500 matches alone
-- does not reach it at a million articles when its words are common. NULL only for rows older
-- than this migration until the store fills them after migrating (`fill_missing_title_keys`,
-- which finds them through this same index: once done, one empty probe at each start).
ALTER TABLE articles ADD COLUMN title_key TEXT;
CREATE INDEX articles_title_key ON articles (title_key);
