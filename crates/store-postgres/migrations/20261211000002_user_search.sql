-- The console's user search by the start of a name or address (issue 28): a prefix few users
-- have is found by a range of these indexes instead of a walk of every user by id (154 ms at
-- 100,000 users for a prefix nobody has). Byte order ("C"), so a prefix is one range.
CREATE INDEX users_username_lower ON users ((lower(username) COLLATE "C"));
CREATE INDEX users_email_lower ON users ((lower(email) COLLATE "C"));
