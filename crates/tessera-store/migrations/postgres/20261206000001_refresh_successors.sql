-- The successor a rotated refresh token was rotated into, kept for the
-- refresh grace period so that the same token presented again (several tabs,
-- a client refreshing on every 401) is answered with it instead of counting
-- as a reuse. Sealed under a key derived from the rotated token, which the
-- database never holds: nothing here is a usable token. A row is written only
-- by a rotation (an authenticated refresh) and deleted by pruning once
-- usable_until (Unix milliseconds) has passed.
CREATE TABLE refresh_successors (
    jti          TEXT   PRIMARY KEY,
    sealed       BYTEA   NOT NULL,
    usable_until BIGINT NOT NULL
);
CREATE INDEX refresh_successors_expiry ON refresh_successors (usable_until);
