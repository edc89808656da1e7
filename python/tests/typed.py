"""Not a test: checked by mypy --strict (python/run-tests), so that the
package's stubs are what a type checker accepts and the API reads as typed."""

from __future__ import annotations

from typing import Any, Dict, Optional

from tessera_verify import FeedUnavailable, TokenRefused, Verifier, bearer_token


def user_id(verifier: Verifier, header: Optional[str]) -> Optional[int]:
    token = bearer_token(header)
    if token is None:
        return None
    try:
        claims: Dict[str, Any] = verifier.verify(token)
    except TokenRefused as refused:
        reason: str = refused.reason
        raise RuntimeError(reason) from refused
    except FeedUnavailable as unavailable:
        seconds: float = unavailable.retry_after
        raise RuntimeError(seconds) from unavailable
    status = verifier.status()
    if status is not None and not status["connected"]:
        return None
    value = claims["user_id"]
    return int(value)


VERIFIER = Verifier(secret="s" * 32, leeway=1.5, revocations=None)
