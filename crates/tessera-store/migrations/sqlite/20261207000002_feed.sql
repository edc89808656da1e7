-- What the revocation feed tells other services, read from the change log
-- itself so that any instance serves any follower: the user a family or a
-- user entry concerns, and whether a blacklisted jti was an access token
-- ('access') or a refresh token ('refresh'; services never see those, so
-- the feed leaves them out). NULL: written before this migration (a jti of
-- unknown type is sent, to be safe).
ALTER TABLE changes ADD COLUMN user_id BIGINT;
ALTER TABLE changes ADD COLUMN token_type TEXT;

UPDATE changes SET user_id = CAST(subject AS BIGINT) WHERE kind = 'user';
UPDATE changes SET user_id = (
    SELECT user_id FROM revoked_families WHERE revoked_families.family_id = changes.subject
) WHERE kind = 'family';

-- The feed's snapshot reads the changes of its window (the newest ones).
CREATE INDEX changes_created_at ON changes (created_at);
