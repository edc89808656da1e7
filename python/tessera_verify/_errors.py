"""The exceptions of tessera_verify (raised by its Rust half too)."""

from __future__ import annotations

__all__ = ["TesseraError", "TokenRefused", "FeedUnavailable", "ConfigurationError"]

REASONS = ("invalid", "expired", "wrong_type", "revoked")


class TesseraError(Exception):
    """Base class of every exception of this package."""


class TokenRefused(TesseraError):
    """The token is refused, for the reason Tessera itself would give.

    ``reason`` is one of ``"invalid"`` (malformed, forged, wrong algorithm
    or key, bad claims), ``"expired"``, ``"wrong_type"`` (a refresh token
    where an access token is expected) and ``"revoked"`` (logout, password
    change, admin revoke, deactivation, RFC 7009 revocation: seen through
    the revocation feed).
    """

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(f"token refused: {reason}")
        self.reason = reason

    @property
    def body(self) -> dict:
        """Tessera's own 401 body for this refusal."""
        from ._native import refusal_body

        return refusal_body(self.reason)


class FeedUnavailable(TesseraError):
    """The token passed every local check, but whether it was revoked cannot
    be told: the revocation feed has been out of reach for longer than
    ``max_staleness``. Answer 503 with ``Retry-After: retry_after``.
    """

    retry_after: float

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"revocations cannot be checked now; try again in {retry_after:g} s"
        )
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """``retry_after`` in whole seconds, at least 1, for ``Retry-After``."""
        import math

        return str(max(1, math.ceil(self.retry_after)))


class ConfigurationError(TesseraError, ValueError):
    """The options cannot make a verifier (no key source, a key that does not
    parse, an unknown algorithm, a revocation feed URL that is not http(s)),
    or this process cannot start following the feed."""
