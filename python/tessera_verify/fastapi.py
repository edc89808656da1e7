"""FastAPI: a ``TesseraBearer`` dependency that verifies Tessera's tokens.

    from fastapi import Depends, FastAPI
    from tessera_verify.fastapi import TesseraBearer

    tessera = TesseraBearer(
        jwks_url="http://auth:8000/.well-known/jwks.json",
        revocations={"url": "http://auth:8000", "client_id": "tc_...", "client_secret": "..."},
    )
    app = FastAPI()

    @app.get("/orders")
    def orders(claims: dict = Depends(tessera)):
        return {"user_id": claims["user_id"]}

``TesseraBearer`` is a ``fastapi.security.HTTPBearer``: ``/docs`` shows an
HTTP bearer scheme on the routes that depend on it. It takes the keyword
options of :class:`tessera_verify.Verifier` (or a ``Verifier``). A refused
token answers 401 ``{"detail": "Given token not valid for any token type"}``
(Tessera's own text) with ``WWW-Authenticate: Bearer``; no bearer credentials
answer as ``HTTPBearer`` does (401 ``{"detail": "Not authenticated"}``), or
give ``None`` with ``auto_error=False``; revocations that cannot be checked
answer 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from fastapi import HTTPException
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from . import ConfigurationError, FeedUnavailable, TokenRefused, Verifier, bearer_token

__all__ = ["TesseraBearer", "TesseraClient", "REFUSED_DETAIL", "UNAVAILABLE_DETAIL"]

#: The ``detail`` of a refused token: Tessera's own (its 401 body's
#: ``detail``), one string whatever the reason, as FastAPI clients expect.
REFUSED_DETAIL = "Given token not valid for any token type"
#: The ``detail`` of the 503 answered when revocations cannot be checked
#: (Tessera's own text for its 503).
UNAVAILABLE_DETAIL = "Service temporarily unavailable, try again later."


class TesseraBearer(HTTPBearer):
    """A dependency giving the verified claims of the request's access token
    (a dict), checked by a :class:`~tessera_verify.Verifier`.

    ``TesseraBearer(verifier)`` uses that verifier; ``TesseraBearer(**options)``
    builds one from ``Verifier``'s keyword options (``jwks_url``, ``secret``,
    ``issuer``, ``revocations``, ...), raising
    :class:`~tessera_verify.ConfigurationError` at once for options that
    cannot make one. No thread starts here: the revocation feed's follower
    starts in the process that first verifies (safe under uvicorn's and
    gunicorn's worker processes).

    With ``auto_error=False`` a request without bearer credentials gives
    ``None`` instead of a 401; a token that is present and refused is
    refused either way.

    The answers come from :meth:`refused` and :meth:`unavailable`, which a
    subclass may override (as ``HTTPBearer.make_not_authenticated_error``).
    """

    verifier: Verifier

    def __init__(
        self,
        verifier: Optional[Verifier] = None,
        *,
        auto_error: bool = True,
        scheme_name: Optional[str] = None,
        description: Optional[str] = None,
        **verifier_kwargs: Any,
    ) -> None:
        if verifier is not None and verifier_kwargs:
            raise ConfigurationError("give a Verifier or its options, not both")
        self.verifier = verifier if verifier is not None else Verifier(**verifier_kwargs)
        super().__init__(
            bearerFormat="JWT",
            scheme_name=scheme_name,
            description=description,
            auto_error=auto_error,
        )
        # Until a first verification has finished, verify in the threadpool:
        # the first one fetches Tessera's JWKS, which must not hold up the
        # event loop. After it, verification is some 15 µs of Rust with the
        # GIL released, less than a threadpool's hand-off (some 200 µs), so
        # it runs inline.
        self._warm = False

    async def __call__(  # type: ignore[override]
        self, request: HTTPConnection
    ) -> Optional[Dict[str, Any]]:
        """The claims of the request's token; ``None`` without bearer
        credentials when ``auto_error`` is false; otherwise an
        ``HTTPException`` with the answer."""
        token = self._token(request)
        if token is None:
            return None
        try:
            if self._warm:
                return self._verify(token)
            try:
                return await run_in_threadpool(self._verify, token)
            finally:
                self._warm = True
        except TokenRefused as refused:
            raise self.refused(refused.reason) from None
        except FeedUnavailable as unavailable:
            raise self.unavailable(unavailable) from None

    def _token(self, request: HTTPConnection) -> Optional[str]:
        values = request.headers.getlist("authorization")
        # Two Authorization headers: which one counts is ambiguous, and
        # Tessera refuses them rather than pick one.
        if len(values) > 1:
            raise self.refused("invalid")
        try:
            token = bearer_token(values[0]) if values else None
        except TokenRefused as refused:
            raise self.refused(refused.reason) from None
        if token is None and self.auto_error:
            raise self.make_not_authenticated_error()
        return token

    def _verify(self, token: str) -> Dict[str, Any]:
        return self.verifier.verify(token)

    def refused(self, reason: str) -> HTTPException:
        """The answer to a token refused for ``reason`` (``invalid``,
        ``expired``, ``wrong_type``, ``revoked``): 401 ``{"detail":
        REFUSED_DETAIL}`` with ``WWW-Authenticate: Bearer``."""
        return HTTPException(
            status_code=401,
            detail=REFUSED_DETAIL,
            headers=self.make_authenticate_headers(),
        )

    def unavailable(self, error: FeedUnavailable) -> HTTPException:
        """The answer when revocations cannot be checked: 503 ``{"detail":
        UNAVAILABLE_DETAIL}`` with ``Retry-After`` in whole seconds."""
        return HTTPException(
            status_code=503,
            detail=UNAVAILABLE_DETAIL,
            headers={"Retry-After": error.retry_after_header},
        )


class TesseraClient(TesseraBearer):
    """A dependency giving the verified claims of a Tessera *service
    client*'s token (another service calling this one, by OAuth2 client
    credentials): ``client_id``, ``sub``, ``scopes``, ``jti``, ``iat``,
    ``exp``. A user's token is refused as invalid; a removed client's token
    is refused once the revocation feed says so.

    ``scopes``: scopes the client must hold; a token without one of them
    answers 403 ``{"detail": "Not enough permissions"}`` with
    ``WWW-Authenticate: Bearer error="insufficient_scope", scope="..."``
    (RFC 6750's answer for too few scopes; the detail is FastAPI's tutorial's).
    """

    def __init__(
        self,
        verifier: Optional[Verifier] = None,
        *,
        scopes: Sequence[str] = (),
        auto_error: bool = True,
        scheme_name: Optional[str] = None,
        description: Optional[str] = None,
        **verifier_kwargs: Any,
    ) -> None:
        if isinstance(scopes, str):
            # "a b" would be read as the scopes "a", " " and "b".
            raise ConfigurationError("scopes must be a list of scope names, not a string")
        self.scopes = list(scopes)
        super().__init__(
            verifier,
            auto_error=auto_error,
            scheme_name=scheme_name,
            description=description,
            **verifier_kwargs,
        )

    def _verify(self, token: str) -> Dict[str, Any]:
        claims = self.verifier.verify_client(token)
        held = claims.get("scopes") or []
        if any(scope not in held for scope in self.scopes):
            raise HTTPException(
                status_code=403,
                detail="Not enough permissions",
                headers={
                    "WWW-Authenticate": 'Bearer error="insufficient_scope", '
                    f'scope="{" ".join(self.scopes)}"'
                },
            )
        return claims
