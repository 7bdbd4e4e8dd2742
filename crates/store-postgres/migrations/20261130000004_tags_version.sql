-- A number that grows with every change to any article's tags, so a cached tag list can be
-- checked against it with one small read (kind 'tags_changed' in `counts`, striped like every
-- count so concurrent writers do not queue on one row; only ever added to, so its sum grows).
CREATE OR REPLACE FUNCTION counts_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('tag', NEW.name, 1);
    ELSE
        PERFORM count_add('tag', OLD.name, -1);
    END IF;
    PERFORM count_add('tags_changed', '', 1);
    RETURN NULL;
END
$$;
