-- One row per session (a login's token family): what a user sees of where
-- they are logged in. Written with the family's first refresh token, in the
-- same transaction; `last_used` and `expires_at` follow each refresh (the
-- newest refresh token's expiry is the session's). Ended sessions are the
-- families in revoked_families, and those of an older token version.
CREATE TABLE sessions (
    family_id  TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- The user's token version at login: a later password change,
    -- deactivation or revoke ended the session.
    token_version BIGINT NOT NULL,
    -- The client address at login (section 5's trusted-proxy rule).
    ip         TEXT   NOT NULL DEFAULT '',
    -- The User-Agent at login, at most 256 characters.
    user_agent TEXT   NOT NULL DEFAULT '',
    -- How it began: password, oauth, flask_jwt_extended, fastapi.
    method     TEXT   NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, last_used);
CREATE INDEX sessions_expiry ON sessions (expires_at);
