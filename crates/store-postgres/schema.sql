-- The schema of Conduit's PostgreSQL database as the migrations (migrations/) leave it: each
-- table with its indexes and triggers, tables by name, then the functions, each statement as
-- PostgreSQL's catalogs describe it (so without the migrations' comments).
-- For reading: the migrations are what runs. Generated; tests/schema.rs fails when it is stale.
-- Regenerate: CONDUIT_BLESS_SCHEMA=1 cargo test -p conduit-store-postgres --test schema

-- account_tokens

CREATE TABLE account_tokens (
    selector text NOT NULL,
    verifier_hash text NOT NULL,
    user_id bigint NOT NULL,
    purpose text NOT NULL,
    email text NOT NULL,
    expires_at bigint NOT NULL,
    proven boolean DEFAULT true NOT NULL,
    issued_at bigint DEFAULT 0 NOT NULL,
    CONSTRAINT account_tokens_pkey PRIMARY KEY (selector),
    CONSTRAINT account_tokens_purpose_check CHECK ((purpose = ANY (ARRAY['verify'::text, 'reset'::text, 'revert'::text]))),
    CONSTRAINT account_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
);

CREATE INDEX account_tokens_revert_email ON public.account_tokens USING btree (email) WHERE (purpose = 'revert'::text);

CREATE INDEX account_tokens_user ON public.account_tokens USING btree (user_id, purpose);

-- article_tags

CREATE TABLE article_tags (
    article_id bigint NOT NULL,
    name text NOT NULL,
    "position" integer NOT NULL,
    CONSTRAINT article_tags_article_id_fkey FOREIGN KEY (article_id) REFERENCES articles(id) ON DELETE CASCADE,
    CONSTRAINT article_tags_pkey PRIMARY KEY (article_id, name)
) WITH (autovacuum_vacuum_insert_threshold=1000, autovacuum_vacuum_insert_scale_factor=0);

CREATE INDEX article_tags_name ON public.article_tags USING btree (name, article_id);

CREATE TRIGGER counts_tags AFTER INSERT OR DELETE ON article_tags FOR EACH ROW EXECUTE FUNCTION counts_tags();

-- articles

CREATE TABLE articles (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    slug text NOT NULL,
    author_id bigint NOT NULL,
    title text NOT NULL,
    description text NOT NULL,
    body text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    tag_list jsonb DEFAULT '[]'::jsonb NOT NULL,
    body_html text,
    search tsvector GENERATED ALWAYS AS ((((setweight(to_tsvector('english'::regconfig, title), 'A'::"char") || setweight(to_tsvector('english'::regconfig, ('the '::text || description)), 'B'::"char")) || setweight(to_tsvector('english'::regconfig, ('the '::text || body)), 'C'::"char")) || setweight(to_tsvector('english'::regconfig, ('the '::text || (tag_list)::text)), 'C'::"char"))) STORED,
    title_key text,
    CONSTRAINT articles_author_id_fkey FOREIGN KEY (author_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT articles_pkey PRIMARY KEY (id),
    CONSTRAINT articles_slug_key UNIQUE (slug)
) WITH (autovacuum_vacuum_insert_threshold=1000, autovacuum_vacuum_insert_scale_factor=0);

CREATE INDEX articles_author ON public.articles USING btree (author_id, id);

CREATE INDEX articles_search ON public.articles USING gin (search);

CREATE INDEX articles_title_key ON public.articles USING btree (title_key);

CREATE INDEX articles_unrendered ON public.articles USING btree (id) WHERE (body_html IS NULL);

CREATE TRIGGER articles_notify_changed AFTER DELETE OR UPDATE OF slug, author_id, title, description, body, tag_list, updated_at ON articles FOR EACH ROW EXECUTE FUNCTION notify_article_changed();

CREATE TRIGGER counts_articles AFTER INSERT OR DELETE ON articles FOR EACH ROW EXECUTE FUNCTION counts_articles();

CREATE TRIGGER favorite_counts_gone AFTER DELETE ON articles FOR EACH ROW EXECUTE FUNCTION favorite_counts_gone();

-- backup_slots

CREATE TABLE backup_slots (
    slot bigint NOT NULL,
    taken_by text NOT NULL,
    claimed_at bigint NOT NULL,
    CONSTRAINT backup_slots_pkey PRIMARY KEY (slot)
);

-- blocks

CREATE TABLE blocks (
    blocker_id bigint NOT NULL,
    blocked_id bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    CONSTRAINT blocks_blocked_id_fkey FOREIGN KEY (blocked_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT blocks_blocker_id_fkey FOREIGN KEY (blocker_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT blocks_pkey PRIMARY KEY (blocker_id, blocked_id)
);

CREATE INDEX blocks_blocked ON public.blocks USING btree (blocked_id);

-- comments

CREATE TABLE comments (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    article_id bigint NOT NULL,
    author_id bigint NOT NULL,
    body text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    body_html text,
    hidden boolean DEFAULT false NOT NULL,
    CONSTRAINT comments_article_id_fkey FOREIGN KEY (article_id) REFERENCES articles(id) ON DELETE CASCADE,
    CONSTRAINT comments_author_id_fkey FOREIGN KEY (author_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT comments_pkey PRIMARY KEY (id)
) WITH (autovacuum_vacuum_insert_threshold=1000, autovacuum_vacuum_insert_scale_factor=0);

CREATE INDEX comments_article ON public.comments USING btree (article_id, id);

CREATE INDEX comments_author ON public.comments USING btree (author_id);

CREATE INDEX comments_unrendered ON public.comments USING btree (id) WHERE (body_html IS NULL);

-- counts

CREATE TABLE counts (
    kind text NOT NULL,
    key text NOT NULL,
    stripe integer NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT counts_pkey PRIMARY KEY (kind, key, stripe)
);

-- favorite_counts

CREATE TABLE favorite_counts (
    article_id bigint NOT NULL,
    stripe integer NOT NULL,
    n bigint NOT NULL,
    CONSTRAINT favorite_counts_pkey PRIMARY KEY (article_id, stripe)
);

-- favorites

CREATE TABLE favorites (
    user_id bigint NOT NULL,
    article_id bigint NOT NULL,
    CONSTRAINT favorites_article_id_fkey FOREIGN KEY (article_id) REFERENCES articles(id) ON DELETE CASCADE,
    CONSTRAINT favorites_pkey PRIMARY KEY (user_id, article_id),
    CONSTRAINT favorites_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) WITH (autovacuum_vacuum_insert_threshold=1000, autovacuum_vacuum_insert_scale_factor=0);

CREATE INDEX favorites_article ON public.favorites USING btree (article_id);

CREATE TRIGGER counts_favorites AFTER INSERT OR DELETE ON favorites FOR EACH ROW EXECUTE FUNCTION counts_favorites();

CREATE TRIGGER favorite_counts AFTER INSERT OR DELETE ON favorites FOR EACH ROW EXECUTE FUNCTION favorite_counts_add();

-- follows

CREATE TABLE follows (
    follower_id bigint NOT NULL,
    followee_id bigint NOT NULL,
    CONSTRAINT follows_followee_id_fkey FOREIGN KEY (followee_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT follows_follower_id_fkey FOREIGN KEY (follower_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT follows_pkey PRIMARY KEY (follower_id, followee_id)
);

CREATE INDEX follows_followee ON public.follows USING btree (followee_id);

-- hidden_articles

CREATE TABLE hidden_articles (
    article_id bigint NOT NULL,
    hidden_at timestamp with time zone NOT NULL,
    CONSTRAINT hidden_articles_article_id_fkey FOREIGN KEY (article_id) REFERENCES articles(id) ON DELETE CASCADE,
    CONSTRAINT hidden_articles_pkey PRIMARY KEY (article_id)
);

CREATE TRIGGER counts_hidden AFTER INSERT OR DELETE ON hidden_articles FOR EACH ROW EXECUTE FUNCTION counts_hidden();

-- moderation_log

CREATE TABLE moderation_log (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    at timestamp with time zone NOT NULL,
    moderator_id bigint NOT NULL,
    moderator text NOT NULL,
    action text NOT NULL,
    target_kind text NOT NULL,
    target_id bigint NOT NULL,
    target text NOT NULL,
    target_user text,
    reason text NOT NULL,
    until_at bigint,
    report_id bigint,
    CONSTRAINT moderation_log_action_check CHECK ((action = ANY (ARRAY['dismiss'::text, 'hide'::text, 'unhide'::text, 'delete'::text, 'suspend'::text, 'unsuspend'::text, 'purge'::text, 'role'::text, 'deactivate'::text, 'reactivate'::text, 'requeue'::text, 'backup'::text, 'verify'::text, 'download'::text]))),
    CONSTRAINT moderation_log_pkey PRIMARY KEY (id),
    CONSTRAINT moderation_log_target_kind_check CHECK ((target_kind = ANY (ARRAY['article'::text, 'comment'::text, 'profile'::text, 'mail'::text, 'backup'::text])))
);

CREATE INDEX moderation_log_action ON public.moderation_log USING btree (action, id);

CREATE INDEX moderation_log_moderator ON public.moderation_log USING btree (moderator_id, id);

CREATE INDEX moderation_log_target ON public.moderation_log USING btree (target_kind, target_id, id);

CREATE TRIGGER moderation_log_append_only BEFORE DELETE OR UPDATE ON moderation_log FOR EACH ROW EXECUTE FUNCTION moderation_log_append_only();

-- notifications

CREATE TABLE notifications (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    user_id bigint,
    kind text NOT NULL,
    actor_id bigint,
    article_id bigint,
    comment_id bigint,
    others bigint DEFAULT 0 NOT NULL,
    action text,
    detail text,
    created_at timestamp with time zone NOT NULL,
    read_at timestamp with time zone,
    CONSTRAINT notifications_check CHECK (((kind = 'article'::text) = (user_id IS NULL))),
    CONSTRAINT notifications_kind_check CHECK ((kind = ANY (ARRAY['follow'::text, 'comment'::text, 'reply'::text, 'favorite'::text, 'moderation'::text, 'article'::text]))),
    CONSTRAINT notifications_pkey PRIMARY KEY (id),
    CONSTRAINT notifications_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
);

CREATE INDEX notifications_articles ON public.notifications USING btree (actor_id, id) WHERE (user_id IS NULL);

CREATE INDEX notifications_unread ON public.notifications USING btree (user_id) WHERE (read_at IS NULL);

CREATE INDEX notifications_user ON public.notifications USING btree (user_id, id);

-- notifications_read

CREATE VIEW notifications_read AS
 SELECT n.id,
    n.user_id,
    n.actor_id,
    n.kind,
    u.username AS actor,
    u.image AS actor_image,
    a.slug,
    a.title,
    n.comment_id,
    substr(c.body, 1, 200) AS excerpt,
    n.others,
    n.action,
    n.detail,
    n.created_at,
    n.read_at IS NOT NULL AS is_read,
    (n.actor_id IS NULL OR u.id IS NOT NULL) AND (n.article_id IS NULL OR a.id IS NOT NULL) AND (n.comment_id IS NULL OR c.id IS NOT NULL) AS shown
   FROM notifications n
     LEFT JOIN users u ON u.id = n.actor_id
     LEFT JOIN articles a ON a.id = n.article_id
     LEFT JOIN comments c ON c.id = n.comment_id;

-- outbox

CREATE TABLE outbox (
    id bigint DEFAULT nextval('outbox_id_seq'::regclass) NOT NULL,
    kind text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    state text DEFAULT 'queued'::text NOT NULL,
    attempts bigint DEFAULT 0 NOT NULL,
    next_attempt_at bigint NOT NULL,
    last_error text,
    created_at bigint NOT NULL,
    sent_at bigint,
    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_state_check CHECK ((state = ANY (ARRAY['queued'::text, 'sent'::text, 'dead'::text])))
);

CREATE INDEX outbox_dead ON public.outbox USING btree (id) WHERE (state = 'dead'::text);

CREATE INDEX outbox_due ON public.outbox USING btree (next_attempt_at) WHERE (state = 'queued'::text);

CREATE INDEX outbox_sent ON public.outbox USING btree (sent_at) WHERE (state = 'sent'::text);

-- report_targets

CREATE TABLE report_targets (
    target_kind text NOT NULL,
    target_id bigint NOT NULL,
    open_reports bigint NOT NULL,
    first_open_id bigint NOT NULL,
    CONSTRAINT report_targets_pkey PRIMARY KEY (target_kind, target_id)
);

CREATE INDEX report_targets_queue ON public.report_targets USING btree (first_open_id) WHERE (open_reports > 0);

-- reports

CREATE TABLE reports (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    reporter_id bigint,
    target_kind text NOT NULL,
    target_id bigint NOT NULL,
    reason text NOT NULL,
    details text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    state text DEFAULT 'open'::text NOT NULL,
    resolved_at timestamp with time zone,
    log_id bigint,
    CONSTRAINT reports_pkey PRIMARY KEY (id),
    CONSTRAINT reports_reason_check CHECK ((reason = ANY (ARRAY['spam'::text, 'harassment'::text, 'illegal'::text, 'other'::text]))),
    CONSTRAINT reports_reporter_id_fkey FOREIGN KEY (reporter_id) REFERENCES users(id) ON DELETE SET NULL,
    CONSTRAINT reports_state_check CHECK ((state = ANY (ARRAY['open'::text, 'dismissed'::text, 'actioned'::text]))),
    CONSTRAINT reports_target_kind_check CHECK ((target_kind = ANY (ARRAY['article'::text, 'comment'::text, 'profile'::text])))
);

CREATE UNIQUE INDEX reports_open_once ON public.reports USING btree (reporter_id, target_kind, target_id) WHERE (state = 'open'::text);

CREATE INDEX reports_open_target ON public.reports USING btree (target_kind, target_id, id) WHERE (state = 'open'::text);

CREATE INDEX reports_reporter ON public.reports USING btree (reporter_id, id);

-- sessions

CREATE TABLE sessions (
    id text NOT NULL,
    data text NOT NULL,
    expires_at bigint NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (id)
);

CREATE INDEX sessions_expires_at ON public.sessions USING btree (expires_at);

-- users

CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    username text NOT NULL,
    email text NOT NULL,
    password_hash text NOT NULL,
    bio text,
    image text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    role text DEFAULT 'user'::text NOT NULL,
    active boolean DEFAULT true NOT NULL,
    grace_token_id text,
    token_version bigint DEFAULT 0 NOT NULL,
    ended_sessions text,
    email_verified boolean DEFAULT false NOT NULL,
    suspended_until bigint,
    suspension_reason text,
    blocking bigint DEFAULT 0 NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_role_check CHECK ((role = ANY (ARRAY['user'::text, 'moderator'::text, 'admin'::text]))),
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE INDEX users_active_created ON public.users USING btree (active, created_at, id);

CREATE INDEX users_created ON public.users USING btree (created_at, id);

CREATE INDEX users_email_lower ON public.users USING btree (lower(email) COLLATE "C");

CREATE INDEX users_role_active ON public.users USING btree (role, active, username);

CREATE INDEX users_username_lower ON public.users USING btree (lower(username) COLLATE "C");

CREATE TRIGGER counts_users AFTER INSERT OR DELETE OR UPDATE OF active ON users FOR EACH ROW EXECUTE FUNCTION counts_users();

CREATE TRIGGER users_notify_changed AFTER DELETE OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION notify_user_changed();

-- functions

CREATE OR REPLACE FUNCTION public.count_add(count_kind text, count_key text, delta bigint)
 RETURNS void
 LANGUAGE sql
AS $function$
    INSERT INTO counts (kind, key, stripe, n) VALUES (count_kind, count_key, pg_backend_pid() % 16, delta)
    ON CONFLICT (kind, key, stripe) DO UPDATE SET n = counts.n + EXCLUDED.n
$function$;

CREATE OR REPLACE FUNCTION public.counts_articles()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.counts_favorites()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM hidden_articles h
               WHERE h.article_id = CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('favorited_by', NEW.user_id::text, 1);
    ELSE
        PERFORM count_add('favorited_by', OLD.user_id::text, -1);
    END IF;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION public.counts_hidden()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    article BIGINT := CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END;
    delta BIGINT := CASE WHEN TG_OP = 'INSERT' THEN -1 ELSE 1 END;
    author BIGINT;
BEGIN
    SELECT author_id INTO author FROM articles WHERE id = article;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM count_add('articles', '', delta);
    PERFORM count_add('author', author::text, delta);
    PERFORM count_add('tag', t.name, delta) FROM article_tags t WHERE t.article_id = article;
    PERFORM count_add('favorited_by', f.user_id::text, delta) FROM favorites f WHERE f.article_id = article;
    PERFORM count_add('tags_changed', '', 1);
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION public.counts_tags()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF EXISTS (SELECT 1 FROM hidden_articles h
               WHERE h.article_id = CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM count_add('tag', NEW.name, 1);
    ELSE
        PERFORM count_add('tag', OLD.name, -1);
    END IF;
    PERFORM count_add('tags_changed', '', 1);
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION public.counts_users()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.favorite_counts_add()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    article BIGINT := CASE WHEN TG_OP = 'INSERT' THEN NEW.article_id ELSE OLD.article_id END;
    delta BIGINT := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
    article_slug TEXT;
    made_here BOOLEAN;
BEGIN
    SELECT a.slug, a.xmin = pg_current_xact_id()::xid INTO article_slug, made_here
    FROM articles a WHERE a.id = article;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO favorite_counts (article_id, stripe, n) VALUES (article, pg_backend_pid() % 16, delta)
        ON CONFLICT (article_id, stripe) DO UPDATE SET n = favorite_counts.n + EXCLUDED.n;
    IF NOT made_here THEN
        PERFORM pg_notify('conduit_article_changed', article_slug);
    END IF;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION public.favorite_counts_gone()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    DELETE FROM favorite_counts WHERE article_id = OLD.id;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION public.moderation_log_append_only()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    RAISE EXCEPTION 'the moderation log is append-only';
END
$function$;

CREATE OR REPLACE FUNCTION public.notify_article_changed()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.xmin = pg_current_xact_id()::xid THEN
        RETURN NULL;
    END IF;
    PERFORM pg_notify('conduit_article_changed', OLD.slug);
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION public.notify_user_changed()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_notify('conduit_user_changed', OLD.id::text);
    RETURN NULL;
END
$function$;
