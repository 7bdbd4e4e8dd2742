-- An admin's actions on the site itself go into the moderation log too, with who made them
-- (issue 28): dead mail requeued ('requeue', target kind 'mail': the message, or 0 for every
-- dead one) and backups taken, verified and downloaded ('backup', 'verify', 'download', target
-- kind 'backup': the file's name).
ALTER TABLE moderation_log DROP CONSTRAINT moderation_log_action_check;
ALTER TABLE moderation_log ADD CONSTRAINT moderation_log_action_check
    CHECK (action IN ('dismiss', 'hide', 'unhide', 'delete', 'suspend', 'unsuspend', 'purge', 'role', 'deactivate',
                      'reactivate', 'requeue', 'backup', 'verify', 'download'));
ALTER TABLE moderation_log DROP CONSTRAINT moderation_log_target_kind_check;
ALTER TABLE moderation_log ADD CONSTRAINT moderation_log_target_kind_check
    CHECK (target_kind IN ('article', 'comment', 'profile', 'mail', 'backup'));
