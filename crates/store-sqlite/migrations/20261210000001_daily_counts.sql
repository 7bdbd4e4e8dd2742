-- Sign-ups and publications per day (UTC), for the console's chart: kept with each insert, so the
-- chart reads a few dozen small rows instead of counting a million. A history: a deletion does
-- not take its day's count back.
CREATE TRIGGER counts_signup_day AFTER INSERT ON users BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('signups_day', substr(NEW.created_at, 1, 10), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER counts_post_day AFTER INSERT ON articles BEGIN
    INSERT INTO counts (kind, key, stripe, n) VALUES ('posts_day', substr(NEW.created_at, 1, 10), 0, 1)
        ON CONFLICT (kind, key, stripe) DO UPDATE SET n = n + 1;
END;
-- What is already there, once.
INSERT INTO counts (kind, key, stripe, n)
SELECT 'signups_day', substr(created_at, 1, 10), 0, COUNT(*) FROM users GROUP BY substr(created_at, 1, 10);
INSERT INTO counts (kind, key, stripe, n)
SELECT 'posts_day', substr(created_at, 1, 10), 0, COUNT(*) FROM articles GROUP BY substr(created_at, 1, 10);
