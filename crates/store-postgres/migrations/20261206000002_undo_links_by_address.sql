-- The undo links by the address they give back: every registration and email change asks
-- whether a live one reserves that address (shared/addresses.rs). Without this index, each
-- asked by reading every account token, and there is one per registration at least.
CREATE INDEX account_tokens_revert_email ON account_tokens (email) WHERE purpose = 'revert';
