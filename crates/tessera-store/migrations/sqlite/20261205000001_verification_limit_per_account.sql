-- The first limit of a mail request counts what the request is for: for a
-- reset request the address asked for (SHA-256 of it, lower-cased), as
-- before; for a verification request the account at its address (SHA-256
-- of both), so that signups carrying somebody's address cannot spend the
-- quota of that person's own account. The column is renamed to say so.
ALTER TABLE mail_requests RENAME COLUMN address_hash TO limit_key;
DROP INDEX mail_requests_address;
CREATE INDEX mail_requests_key ON mail_requests (limit_key, at);
