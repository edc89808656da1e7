-- Service clients (OAuth2 confidential clients, the client_credentials
-- grant). Only the SHA-256 of a secret is kept: secrets are 256 random
-- bits, so a fast hash of one is as good as a slow one. A removed client
-- keeps its row (`removed_at`) until `refused_until`, the moment every
-- token it was issued has expired, so that a start reloads it as a marker
-- refusing those tokens; pruning deletes it after that.
CREATE TABLE clients (
    client_id     TEXT   PRIMARY KEY,
    name          TEXT   NOT NULL,
    secret_digest TEXT   NOT NULL,
    -- Space-separated scopes, as OAuth2 writes them.
    scope         TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    removed_at    BIGINT,
    refused_until BIGINT
);
-- A name names one client among those not removed.
CREATE UNIQUE INDEX clients_name ON clients (name) WHERE removed_at IS NULL;
CREATE INDEX clients_refused_until ON clients (refused_until);
