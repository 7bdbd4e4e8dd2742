-- The listings read the newest rows of these tables through index-only scans, which skip the
-- table only on pages the visibility map marks all-visible, and only VACUUM marks them. By
-- default autovacuum visits a table for its inserts after a fifth of its rows are new (200,000
-- articles at a million), so the newest rows, the ones every listing reads, were the ones left
-- unmarked: the deepest offset allowed (10,000 entries) fetched each from the table, 706 req/s
-- at a million articles against 3,812 after a VACUUM. Visit after every 1,000 new rows instead
-- (autovacuum looks once a minute); a vacuum reads only the pages not yet marked, the new ones.
ALTER TABLE articles SET (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE article_tags SET (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE favorites SET (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0);
ALTER TABLE comments SET (autovacuum_vacuum_insert_threshold = 1000, autovacuum_vacuum_insert_scale_factor = 0);
