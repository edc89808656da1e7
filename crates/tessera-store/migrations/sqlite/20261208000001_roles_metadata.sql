-- Each user's roles (a JSON array of names, sorted, each once: Django's
-- groups when imported) and app_metadata (a JSON object of at most 4 KiB,
-- set by staff), both copied into access tokens by `extra_claims`. Kept as
-- JSON text in the row itself, as both engines read it alike: a token is
-- minted from one row, and nothing queries users by role. claims_version is
-- raised by each change of either, so that access tokens carrying the old
-- claims are refused as expired (`cver`) and clients refresh.
ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN app_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN claims_version BIGINT NOT NULL DEFAULT 0;
