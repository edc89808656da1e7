-- Keys published before they sign: a rotated key is in the JWKS at once and
-- signs from `signs_from`, a moment on the database's clock (Unix seconds),
-- when every instance switches to it; the key it replaces is retired at that
-- same moment, so `retired_at` may lie ahead. NULL: the key signs from when it
-- was stored (a first key, and every key stored before this migration).
ALTER TABLE signing_keys ADD COLUMN signs_from BIGINT;
