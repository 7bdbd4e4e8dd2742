-- The admin listing of users (`GET /api/users`) showed how many there are by counting them on
-- each request, a read of the whole table (100,000 users at a million articles). Now kept in
-- `counts` like every other total (20261130000003), in the writing transaction: all users, and
-- the active ones (inactive = all - active).
INSERT INTO counts (kind, key, stripe, n) SELECT 'users', '', 0, count(*) FROM users;
INSERT INTO counts (kind, key, stripe, n) SELECT 'users_active', '', 0, count(*) FROM users WHERE active;

CREATE TRIGGER counts_user_added AFTER INSERT ON users BEGIN
    UPDATE counts SET n = n + 1
    WHERE stripe = 0 AND key = '' AND (kind = 'users' OR (kind = 'users_active' AND NEW.active));
END;

CREATE TRIGGER counts_user_removed AFTER DELETE ON users BEGIN
    UPDATE counts SET n = n - 1
    WHERE stripe = 0 AND key = '' AND (kind = 'users' OR (kind = 'users_active' AND OLD.active));
END;

CREATE TRIGGER counts_user_active AFTER UPDATE OF active ON users WHEN NEW.active IS NOT OLD.active BEGIN
    UPDATE counts SET n = n + CASE WHEN NEW.active THEN 1 ELSE -1 END
    WHERE stripe = 0 AND key = '' AND kind = 'users_active';
END;
