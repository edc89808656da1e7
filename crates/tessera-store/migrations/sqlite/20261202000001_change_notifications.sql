-- On PostgreSQL this migration makes each commit to the change log notify
-- the other instances. SQLite has no notifications (processes sharing a file
-- poll the log), so here it changes nothing; it exists so that both engines
-- apply the same list of migrations.
SELECT 1;
