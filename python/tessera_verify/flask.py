"""Flask: verify Tessera's tokens in the idiom of Flask-JWT-Extended.

    from flask import Flask
    from tessera_verify.flask import Tessera, get_claims, tessera_required

    app = Flask(__name__)
    app.config["TESSERA_JWKS_URL"] = "http://auth:8000/.well-known/jwks.json"
    app.config["TESSERA_REVOCATIONS"] = {"url": "http://auth:8000",
                                         "client_id": "tc_...", "client_secret": "..."}
    tessera = Tessera(app)

    @app.get("/orders")
    @tessera_required()
    def orders():
        return {"user_id": get_claims()["user_id"]}

Every keyword option of :class:`tessera_verify.Verifier` is read from
``app.config["TESSERA_<NAME>"]`` (``TESSERA_JWKS_URL``, ``TESSERA_SECRET``,
``TESSERA_PUBLIC_KEY``, ``TESSERA_ALGORITHM``, ``TESSERA_ALGORITHMS``,
``TESSERA_ISSUER``, ``TESSERA_AUDIENCE``, ``TESSERA_LEEWAY``,
``TESSERA_TOKEN_TYPE``, ``TESSERA_USER_ID_CLAIM``, ``TESSERA_SUBJECT``,
``TESSERA_REVOCATIONS``, ...), plus ``TESSERA_HEADER_TYPE``, the scheme of the
``Authorization`` header (``"Bearer"``).

Refusals answer 401 ``{"msg": ...}`` in Flask-JWT-Extended's wording, with
Tessera's ``WWW-Authenticate`` challenge; when revocations cannot be checked
(the feed out of reach past ``max_staleness``) the answer is 503 with
``Retry-After``. The extension's ``unauthorized_loader``, ``refused_loader``
and ``unavailable_loader`` decorators replace these answers.
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, TypeVar, cast

from flask import Flask, Response, abort, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

# The keyword options of Verifier, each read from app.config["TESSERA_<NAME>"].
from ._options import VERIFIER_OPTIONS as _VERIFIER_OPTIONS
from . import (
    CHALLENGE,
    CHALLENGE_INVALID,
    ConfigurationError,
    FeedUnavailable,
    TokenRefused,
    Verifier,
    bearer_token,
)

__all__ = [
    "Tessera",
    "tessera_required",
    "verify_tessera_in_request",
    "get_claims",
    "current_user_id",
    "MESSAGES",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The ``msg`` of each answer: Flask-JWT-Extended's wording where it has one.
#: Its decode errors repeat PyJWT's exception texts, which Tessera's checks do
#: not produce: an invalid token says "Invalid token", as Tessera's own
#: Flask-JWT-Extended routes (``compat``) do.
MESSAGES: Dict[str, str] = {
    "missing": "Missing Authorization Header",
    "invalid": "Invalid token",
    "expired": "Token has expired",
    "wrong_type": "Only non-refresh tokens are allowed",
    "revoked": "Token has been revoked",
    "unavailable": "Service temporarily unavailable, try again later.",
}


_EXTENSION = "tessera"


def _wrong_scheme_message(header_type: str) -> str:
    # Flask-JWT-Extended's NoAuthorizationError for a header of another scheme.
    return (
        f"Missing '{header_type}' type in 'Authorization' header. "
        f"Expected 'Authorization: {header_type} <JWT>'"
    )


def _bad_header_message(header_type: str) -> str:
    # Flask-JWT-Extended's InvalidHeaderError: the scheme is there, the token unreadable.
    return f"Bad Authorization header. Expected 'Authorization: {header_type} <JWT>'"


@dataclass(frozen=True)
class _State:
    """What init_app made for one app (an extension may serve several apps)."""

    extension: "Tessera"
    verifier: Verifier
    header_type: str
    user_id_claim: str


class Tessera:
    """The Flask extension: ``Tessera(app)``, or ``Tessera()`` then
    ``init_app(app)`` for application factories.

    ``init_app`` builds the app's :class:`~tessera_verify.Verifier` from
    ``app.config["TESSERA_..."]`` and raises
    :class:`~tessera_verify.ConfigurationError` there for options that cannot
    make one. It starts no thread: the revocation feed's follower starts in
    the process that first verifies (so forking servers such as gunicorn
    ``--preload`` are safe).
    """

    def __init__(self, app: Optional[Flask] = None) -> None:
        self._unauthorized: Optional[Callable[[str], ResponseReturnValue]] = None
        self._refused: Optional[Callable[[str], ResponseReturnValue]] = None
        self._unavailable: Optional[Callable[[FeedUnavailable], ResponseReturnValue]] = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Builds the verifier of ``app`` from its config and registers the
        extension in ``app.extensions["tessera"]``."""
        options: Dict[str, Any] = {}
        for name in _VERIFIER_OPTIONS:
            key = "TESSERA_" + name.upper()
            if app.config.get(key) is not None:
                value = app.config[key]
                # Flask-JWT-Extended's JWT_DECODE_LEEWAY takes a timedelta too.
                if isinstance(value, datetime.timedelta):
                    value = value.total_seconds()
                options[name] = value
        header_type = app.config.get("TESSERA_HEADER_TYPE", "Bearer")
        if not isinstance(header_type, str) or not header_type or " " in header_type:
            raise ConfigurationError(
                "TESSERA_HEADER_TYPE must be an authorization scheme such as 'Bearer'"
            )
        verifier = Verifier(**options)
        user_id_claim = options.get("user_id_claim") or "user_id"
        app.extensions[_EXTENSION] = _State(self, verifier, header_type, user_id_claim)

    def verifier(self, app: Optional[Flask] = None) -> Verifier:
        """The verifier of ``app`` (by default the current app), e.g. for its
        ``status()`` in a health check."""
        return _state(app).verifier

    def unauthorized_loader(
        self, callback: Callable[[str], ResponseReturnValue]
    ) -> Callable[[str], ResponseReturnValue]:
        """Replaces the answer to a request without bearer credentials
        (default 401 ``{"msg": <text>}``); the callback gets the text."""
        self._unauthorized = callback
        return callback

    def refused_loader(
        self, callback: Callable[[str], ResponseReturnValue]
    ) -> Callable[[str], ResponseReturnValue]:
        """Replaces the answer to a refused token (default 401 ``{"msg": ...}``);
        the callback gets the reason: ``invalid``, ``expired``,
        ``wrong_type`` or ``revoked``."""
        self._refused = callback
        return callback

    def unavailable_loader(
        self, callback: Callable[[FeedUnavailable], ResponseReturnValue]
    ) -> Callable[[FeedUnavailable], ResponseReturnValue]:
        """Replaces the answer given when revocations cannot be checked
        (default 503 with ``Retry-After``); the callback gets the
        :class:`~tessera_verify.FeedUnavailable` (``.retry_after_header``)."""
        self._unavailable = callback
        return callback

    # The answers. Each is a Response given to abort(), which Flask sends as
    # it is, past the app's error handlers (as Flask-JWT-Extended's own
    # handlers answer whatever the app's handlers do).

    def _answer_unauthorized(self, message: str) -> Response:
        if self._unauthorized is not None:
            return current_app.make_response(self._unauthorized(message))
        response = jsonify(msg=message)
        response.status_code = 401
        response.headers["WWW-Authenticate"] = CHALLENGE
        return response

    def _answer_refused(self, reason: str, message: Optional[str] = None) -> Response:
        if self._refused is not None:
            return current_app.make_response(self._refused(reason))
        response = jsonify(msg=message or MESSAGES.get(reason, MESSAGES["invalid"]))
        response.status_code = 401
        response.headers["WWW-Authenticate"] = CHALLENGE_INVALID
        return response

    def _answer_unavailable(self, error: FeedUnavailable) -> Response:
        if self._unavailable is not None:
            return current_app.make_response(self._unavailable(error))
        response = jsonify(msg=MESSAGES["unavailable"])
        response.status_code = 503
        response.headers["Retry-After"] = error.retry_after_header
        return response


def _state(app: Optional[Flask] = None) -> _State:
    target = app if app is not None else current_app
    state = target.extensions.get(_EXTENSION)
    if state is None:
        raise RuntimeError(
            "tessera_verify.flask.Tessera is not initialised on this app: "
            "call Tessera(app) or tessera.init_app(app)"
        )
    return cast(_State, state)


def verify_tessera_in_request(optional: bool = False) -> Optional[Dict[str, Any]]:
    """Verifies the request's bearer token and keeps its claims for
    :func:`get_claims`; the claims, or ``None`` when ``optional`` and the
    request has no bearer credentials. Otherwise ends the request with the
    extension's answer (401, or 503 when revocations cannot be checked).

    A token that is present but refused is refused even when ``optional``,
    as with Flask-JWT-Extended.
    """
    state = _state()
    g._tessera_claims = None
    values = request.headers.getlist("Authorization")
    # Two Authorization headers: which one counts is ambiguous, and Tessera
    # refuses them rather than pick one. (WSGI servers join repeated headers
    # with ", ", which Tessera's reading refuses as unreadable; the list is
    # checked for environments that keep them apart.)
    if len(values) > 1:
        abort(state.extension._answer_refused("invalid", _bad_header_message(state.header_type)))
    value = values[0].strip() if values else ""
    try:
        token = bearer_token(value, [state.header_type]) if value else None
    except TokenRefused as refused:
        abort(state.extension._answer_refused(refused.reason, _bad_header_message(state.header_type)))
    if token is None:
        if optional:
            g._tessera_claims = {}
            return None
        message = _wrong_scheme_message(state.header_type) if value else MESSAGES["missing"]
        abort(state.extension._answer_unauthorized(message))
    try:
        claims = state.verifier.verify(token)
    except TokenRefused as refused:
        abort(state.extension._answer_refused(refused.reason))
    except FeedUnavailable as unavailable:
        abort(state.extension._answer_unavailable(unavailable))
    g._tessera_claims = claims
    return claims


def tessera_required(optional: bool = False) -> Callable[[F], F]:
    """Protects a view: it runs only for a request with a token Tessera
    accepts (or, when ``optional``, with no bearer credentials at all, and
    then :func:`get_claims` is ``{}``). Works on async views too."""

    def wrapper(view: F) -> F:
        @functools.wraps(view)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            verify_tessera_in_request(optional)
            return current_app.ensure_sync(view)(*args, **kwargs)

        return cast(F, decorated)

    return wrapper


def get_claims() -> Dict[str, Any]:
    """The verified claims of the current request (``{}`` for an optional
    view reached without a token). Raises ``RuntimeError`` outside a view
    protected by :func:`tessera_required` or
    :func:`verify_tessera_in_request`."""
    claims = g.get("_tessera_claims")
    if claims is None:
        raise RuntimeError(
            "get_claims() needs @tessera_required() or verify_tessera_in_request() first"
        )
    return cast(Dict[str, Any], claims)


def current_user_id() -> Optional[int]:
    """The id of the current request's user (the ``TESSERA_USER_ID_CLAIM``
    claim, ``user_id`` by default), or ``None`` without a token."""
    value = get_claims().get(_state().user_id_claim)
    return None if value is None else int(value)
