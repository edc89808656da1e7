-- Passkeys (docs/API.md, "Passkeys"): a user's WebAuthn credentials, and the
-- ceremonies under way that will register or use one.

-- A user's passkeys: at most 10 per user (the server refuses an eleventh),
-- their bound. `id` is the server's name for one (random, in the API);
-- `credential_id` the authenticator's (base64url), unique across users;
-- `user_handle` the WebAuthn user handle the authenticator keeps with it (a
-- random UUID per user, never the user's id or name). `passkey` is the
-- credential as the WebAuthn library keeps it (JSON: the public key and the
-- signature counter); `sign_count` the counter of the last assertion
-- accepted: an assertion is accepted only with a counter above it (or both
-- zero, for authenticators without one), decided by the conditional update
-- that raises it, on every instance sharing the database.
CREATE TABLE mfa_passkeys (
    id            TEXT   PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT   NOT NULL UNIQUE,
    user_handle   TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    passkey       TEXT   NOT NULL,
    sign_count    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX mfa_passkeys_user ON mfa_passkeys (user_id, created_at);

-- WebAuthn ceremonies under way, known by their challenge (base64url, 32
-- random bytes, which the authenticator signs into its answer), used once,
-- for 5 minutes: `register` (a user adding a passkey: one per user, a new
-- one replaces it), `second_factor` (a login's second step: one per
-- `mfa_token`, whose SHA-256 is `mfa_token_hash`) and `login` (a passwordless
-- login: no user until it finishes; at most 10 live per client address, `ip`
-- (an IPv6 client: its /64), and 10,000 in all, a start beyond either
-- refused). `state` is the library's ceremony state (JSON).
-- Expired ones are pruned.
CREATE TABLE passkey_ceremonies (
    challenge      TEXT   PRIMARY KEY,
    purpose        TEXT   NOT NULL,
    user_id        BIGINT REFERENCES users (id) ON DELETE CASCADE,
    mfa_token_hash TEXT,
    state          TEXT   NOT NULL,
    ip             TEXT   NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX passkey_ceremonies_expiry ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_user ON passkey_ceremonies (user_id);
CREATE INDEX passkey_ceremonies_address ON passkey_ceremonies (purpose, ip);
