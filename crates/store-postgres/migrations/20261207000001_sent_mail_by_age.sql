-- Sent mail is deleted after its retention (CONDUIT_MAIL_RETENTION_DAYS), oldest first: this
-- finds it without reading the rest of the outbox.
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE state = 'sent';
