-- Password reset and email verification: the users' verified flag, the
-- links mailed, the requests counted by the limits, and the outbox.

-- Whether the user proved they read mail at `email`: set by following a
-- verification link (or a reset link, which proves as much), cleared when
-- the address changes.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
-- Reset requests look users up by address, as Django does, ignoring case.
CREATE INDEX users_email ON users (lower(email));

-- Links mailed for a password reset or a verification. Only the SHA-256 of
-- the link's token is kept; a row is deleted when a newer link of the same
-- kind is mailed to the user (which voids it), and marked when used.
CREATE TABLE email_tokens (
    token_hash TEXT   PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- reset or verify.
    kind       TEXT   NOT NULL,
    -- The address the link went to: a verification holds only while the
    -- user's address is still this one.
    email      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX email_tokens_user ON email_tokens (user_id, kind);
CREATE INDEX email_tokens_expiry ON email_tokens (expires_at);

-- Every reset or verification request, known address or not: what the
-- per-address and per-client limits count, by the address's SHA-256. A
-- reset request within the limits also keeps the address asked for until
-- the background sender has looked it up and written the mails (then it is
-- emptied): the request itself does the same work whoever has the address.
CREATE TABLE mail_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT   NOT NULL,
    address_hash TEXT   NOT NULL,
    client       TEXT   NOT NULL,
    at           BIGINT NOT NULL,
    address      TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX mail_requests_address ON mail_requests (address_hash, at);
CREATE INDEX mail_requests_client ON mail_requests (client, at);
CREATE INDEX mail_requests_pending ON mail_requests (id) WHERE address <> '';

-- Mail waiting to be sent, written in the transaction of the request that
-- asked for it, delivered by the background sender. The text (which holds
-- the link) is emptied once the mail is sent or given up on.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    -- Given up on after this (the link in it has expired by then).
    expires_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- The next try; a sender that takes the mail moves it a lease ahead, so
    -- that another instance does not send it too.
    next_attempt_at BIGINT NOT NULL,
    sent_at         BIGINT,
    failed_at       BIGINT,
    last_error      TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
