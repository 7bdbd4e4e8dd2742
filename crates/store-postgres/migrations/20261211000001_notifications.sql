-- Notifications (issue 29): a person's inbox, written in the transaction of the event that
-- causes it. `id` orders every notification ever written. Transactions commit out of `id`
-- order here, so a reader of new notifications waits for a gap to fill (see the server's
-- `notify::tail`). Only the recipient is a foreign key: the actor, article and comment a
-- notification names are looked up when it is read, and one whose article or actor is gone is
-- skipped (and goes with age), so a write pays for two index entries and no more.
CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The recipient; none for a new article, which goes to the author's followers
    -- (`actor_id`) as they are when it is read: one row however many follow.
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('follow', 'comment', 'reply', 'favorite', 'moderation', 'article')),
    actor_id BIGINT,
    article_id BIGINT,
    comment_id BIGINT,
    -- Favorites are grouped: how many others favorited the article before `actor_id` did.
    others BIGINT NOT NULL DEFAULT 0,
    -- A moderation notice's action, and the title of what it was about.
    action TEXT,
    detail TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    read_at TIMESTAMPTZ,
    CHECK ((kind = 'article') = (user_id IS NULL))
);
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_articles ON notifications (actor_id, id) WHERE user_id IS NULL;

-- A notification as it is read: with its actor's name and picture, its article's slug and
-- title, the start of its comment, and whether all it names still exists (`shown`: one whose
-- actor, article or comment is gone is skipped, and its id still counts for the streams).
CREATE VIEW notifications_read AS
SELECT n.id, n.user_id, n.actor_id, n.kind, u.username AS actor, u.image AS actor_image, a.slug, a.title, n.comment_id,
       substr(c.body, 1, 200) AS excerpt, n.others, n.action, n.detail, n.created_at, n.read_at IS NOT NULL AS is_read,
       (n.actor_id IS NULL OR u.id IS NOT NULL) AND (n.article_id IS NULL OR a.id IS NOT NULL)
           AND (n.comment_id IS NULL OR c.id IS NOT NULL) AS shown
FROM notifications n
LEFT JOIN users u ON u.id = n.actor_id
LEFT JOIN articles a ON a.id = n.article_id
LEFT JOIN comments c ON c.id = n.comment_id;
