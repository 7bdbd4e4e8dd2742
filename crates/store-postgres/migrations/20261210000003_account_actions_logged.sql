-- Account changes by admins (a role given, a deactivation, a reactivation) go into the
-- moderation log too, with who made them: its action list gains 'role', 'deactivate' and
-- 'reactivate'.
ALTER TABLE moderation_log DROP CONSTRAINT moderation_log_action_check;
ALTER TABLE moderation_log ADD CONSTRAINT moderation_log_action_check
    CHECK (action IN ('dismiss', 'hide', 'unhide', 'delete', 'suspend', 'unsuspend', 'purge', 'role', 'deactivate', 'reactivate'));
