-- Every transaction that appends to the change log notifies the channel
-- `tessera:SCHEMA` (cut to PostgreSQL's 63 characters) when it commits, so
-- that deployments in other schemas of the database do not hear it
-- (PostgreSQL folds the identical notifications of one transaction into
-- one). The other instances thereby
-- read the log at once rather than at their next poll. A notification is a
-- hint only: the change log stays the truth, and a missed notification costs
-- nothing but the wait for that poll.
CREATE FUNCTION tessera_notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('tessera:' || TG_TABLE_SCHEMA, 63), '');
    RETURN NULL;
END
$$;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION tessera_notify_changes();
