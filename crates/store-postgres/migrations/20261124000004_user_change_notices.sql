-- Each instance caches users for authentication (conduit-store's UserCache) and must hear of
-- every change to them, whoever makes it: another instance, `conduit user ...`, or plain SQL.
-- The notice is sent when the changing transaction commits, to every listening session.
CREATE FUNCTION notify_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conduit_user_changed', OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_user_changed();
