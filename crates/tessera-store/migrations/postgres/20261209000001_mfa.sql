-- Second factors (docs/API.md, "Second factors"): a user's TOTP factor, its
-- recovery codes, and the challenges of logins waiting for a second factor.

-- At most one TOTP factor per user (RFC 6238): pending from enrolment
-- (`confirmed_at` NULL) until a code proves the authenticator holds the
-- secret. `secret` is the raw shared secret (20 random bytes): never logged,
-- never shown after enrolment. `last_step` is the last time step whose code
-- was accepted: a code is accepted once, decided by the conditional update
-- that raises it (`last_step IS NULL OR last_step < step`), on every
-- instance sharing the database. One row per user at most: its bound.
CREATE TABLE mfa_totp (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT
);

-- A user's recovery codes: ten at a time (replaced whole on regeneration),
-- each the SHA-256 (hex) of a code of about 50 random bits, used once
-- (`used_at`). Ten rows per user at most: their bound.
CREATE TABLE mfa_recovery_codes (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Logins whose password was right, waiting for the second factor: the
-- SHA-256 (hex) of the `mfa_token` handed out (32 random bytes), used once,
-- for 5 minutes. What the login route needs to answer as it would have:
-- how it began (`method`: password, oauth, flask_jwt_extended, fastapi),
-- how its tokens travel (`transport`: header, cookie), where from, and the
-- user's token version then (a password change in between voids it). Bound:
-- at most 5 live challenges per user (a new one deletes the oldest), and
-- expired ones are pruned.
CREATE TABLE mfa_challenges (
    token_hash    TEXT   PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_version BIGINT NOT NULL,
    method        TEXT   NOT NULL,
    transport     TEXT   NOT NULL,
    ip            TEXT   NOT NULL DEFAULT '',
    user_agent    TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id, created_at);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
