-- An undo link (a revert token) gives back the address an email change moved away from. `proven`
-- says whether that address had been proven (verified) on the account: proving another address
-- ends the undo rights to unproven ones (pre-account hijacking), never to proven ones.
ALTER TABLE account_tokens ADD COLUMN proven BOOLEAN NOT NULL DEFAULT TRUE;
-- When the token was issued (Unix microseconds; 0 for tokens older than this column): an undo
-- link outranks the newer ones, so a thief's later undo leaves the owner's working.
ALTER TABLE account_tokens ADD COLUMN issued_at BIGINT NOT NULL DEFAULT 0;
