-- A user row's revision, raised by every update in the same statement, so that
-- a process's memory can tell an older copy of the row from a newer one and
-- never replace the newer (a login that read the row before a deactivation
-- must not bring the active user back).
ALTER TABLE users ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
