-- Enrolment tokens (docs/API.md, "The mfa setting"): a right password of a
-- user whom the `mfa` setting requires a second factor of, and who has
-- none, is answered with an opaque token that allows only the TOTP
-- enrolment routes. It is a row of `mfa_challenges` whose `purpose` is
-- `enrolment` (a login's challenge is `login`): the same SHA-256 of 32
-- random bytes, the same user token version, and the same bound (at most 5
-- live rows per user, whatever their purpose; expired ones pruned).
ALTER TABLE mfa_challenges ADD COLUMN purpose TEXT NOT NULL DEFAULT 'login';
