-- The audit log: one row per security event, appended by the server's
-- batched audit writer, read by staff. No foreign key: an event outlives
-- the user it names, and a failed login may name no user at all.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    event      TEXT   NOT NULL,
    user_id    BIGINT,
    actor_id   BIGINT,
    ip         TEXT   NOT NULL DEFAULT '',
    user_agent TEXT   NOT NULL DEFAULT '',
    -- A JSON object; never a password, a hash or a token.
    detail     TEXT   NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
