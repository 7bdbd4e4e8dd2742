-- The admin listing of users (`GET /api/users`) showed how many there are by counting them on
-- each request, a read of the whole table (100,000 users at a million articles). Now kept in
-- `counts` like every other total (20261130000003), in the writing transaction: all users, and
-- the active ones (inactive = all - active). Striped by connection, as there.
INSERT INTO counts (kind, key, stripe, n) SELECT 'users', '', 0, count(*) FROM users;
INSERT INTO counts (kind, key, stripe, n) SELECT 'users_active', '', 0, count(*) FROM users WHERE active;

CREATE FUNCTION counts_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('users', '', 1);
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
CREATE TRIGGER counts_users AFTER INSERT OR DELETE OR UPDATE OF active ON users
    FOR EACH ROW EXECUTE FUNCTION counts_users();
