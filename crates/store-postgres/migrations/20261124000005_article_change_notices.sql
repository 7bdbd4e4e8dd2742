-- Each instance caches anonymous views of articles by slug and must hear of every change to
-- an article row. Favourite counts and tag lists live on that row (kept by the triggers of
-- 20261124000003), so favouriting and retagging are heard too. Author profile changes are
-- heard through the users notice (20261124000004).
--
-- A row inserted by this same transaction (an article being created, whose tag list the tag
-- triggers then fill in) cannot be in anyone's cache yet: no notice. That matters because a
-- transaction that notifies holds a database-wide lock from its notice to its commit, which
-- would serialise every article creation.
CREATE FUNCTION notify_article_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.xmin = pg_current_xact_id()::xid THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('conduit_article_changed', OLD.slug);
    RETURN NULL;
END
$$;

CREATE TRIGGER articles_notify_changed AFTER UPDATE OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION notify_article_changed();
