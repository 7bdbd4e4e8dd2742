-- Dead mail by id: the console counts it (up to a bound) and lists it without reading the sent.
CREATE INDEX outbox_dead ON outbox (id) WHERE state = 'dead';
