-- Tessera's initial schema, PostgreSQL edition: in step with
-- migrations/sqlite/20261124000001_initial.sql (the schema parity test
-- compares the two). Times are Unix seconds (BIGINT); ids are BIGSERIAL where
-- SQLite has INTEGER PRIMARY KEY AUTOINCREMENT, the key blob is BYTEA.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    is_staff      BOOLEAN NOT NULL DEFAULT FALSE,
    is_superuser  BOOLEAN NOT NULL DEFAULT FALSE,
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    -- Raised by a password change, an admin revoke or a deactivation: tokens
    -- carrying an older `ver` are refused.
    token_version BIGINT  NOT NULL DEFAULT 0,
    date_joined   BIGINT  NOT NULL,
    last_login    BIGINT
);

-- Every refresh token issued (simplejwt's outstanding tokens), so that rotation
-- and blacklisting are a conditional update of one row.
CREATE TABLE refresh_tokens (
    jti            TEXT   PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id      TEXT   NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    blacklisted_at BIGINT
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_blacklisted ON refresh_tokens (expires_at) WHERE blacklisted_at IS NOT NULL;

-- Families (logins) ended by logout or refresh-token reuse.
CREATE TABLE revoked_families (
    family_id  TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_families_expiry ON revoked_families (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT   PRIMARY KEY,
    algorithm   TEXT   NOT NULL,
    private_key BYTEA  NOT NULL,
    created_at  BIGINT NOT NULL,
    -- Set when a newer key took over signing; the key still verifies the
    -- tokens it signed until they expire.
    retired_at  BIGINT
);

-- An append-only log of writes that running servers must apply to their
-- in-memory state: another process (the CLI, a second instance) writes here,
-- and every server polls it. Every transaction that inserts here first takes
-- the change-log advisory lock (see src/postgres.rs), so ids commit in order.
CREATE TABLE changes (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
);
