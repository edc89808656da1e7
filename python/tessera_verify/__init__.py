"""Verify Tessera's tokens in Python services with Tessera's own code.

    from tessera_verify import Verifier, TokenRefused
    verifier = Verifier(jwks_url="http://auth:8000/.well-known/jwks.json",
                        revocations={"url": "http://auth:8000",
                                     "client_id": "tc_...", "client_secret": "..."})
    claims = verifier.verify(token)   # a dict, or TokenRefused(.reason)

The checks are those of Tessera's server (the same Rust code); with
``revocations`` a background thread per process follows Tessera's revocation
feed, so that a logged-out, revoked or deactivated user's token is refused
within about a second, with no request to Tessera per verification.

Framework integrations: ``tessera_verify.django`` (Django REST framework),
``tessera_verify.flask`` and ``tessera_verify.fastapi``.
"""

from ._errors import ConfigurationError, FeedUnavailable, TesseraError, TokenRefused
from ._native import (
    CHALLENGE,
    CHALLENGE_INVALID,
    NOT_AUTHENTICATED_BODY,
    Verifier,
    bearer_token,
    refusal_body,
)

__all__ = [
    "Verifier",
    "TesseraError",
    "TokenRefused",
    "FeedUnavailable",
    "ConfigurationError",
    "bearer_token",
    "refusal_body",
    "NOT_AUTHENTICATED_BODY",
    "CHALLENGE",
    "CHALLENGE_INVALID",
]
