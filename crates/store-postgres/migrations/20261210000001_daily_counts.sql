-- Sign-ups and publications per day (UTC), for the console's chart: kept with each insert (in
-- the striped counters, like every other count), so the chart reads a few dozen small rows
-- instead of counting a million. A history: a deletion does not take its day's count back.
CREATE OR REPLACE FUNCTION counts_articles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('articles', '', 1);
        PERFORM count_add('author', NEW.author_id::text, 1);
        PERFORM count_add('posts_day', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1);
    ELSE
        PERFORM count_add('articles', '', -1);
        PERFORM count_add('author', OLD.author_id::text, -1);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION counts_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('users', '', 1);
        PERFORM count_add('signups_day', to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 1);
        IF NEW.active THEN
            PERFORM count_add('users_active', '', 1);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM count_add('users', '', -1);
        IF OLD.active THEN
            PERFORM count_add('users_active', '', -1);
        END IF;
    ELSIF NEW.active IS DISTINCT FROM OLD.active THEN
        PERFORM count_add('users_active', '', CASE WHEN NEW.active THEN 1 ELSE -1 END);
    END IF;
    RETURN NULL;
END
$$;

-- What is already there, once.
INSERT INTO counts (kind, key, stripe, n)
SELECT 'signups_day', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 0, COUNT(*) FROM users GROUP BY 2;
INSERT INTO counts (kind, key, stripe, n)
SELECT 'posts_day', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 0, COUNT(*) FROM articles GROUP BY 2;
