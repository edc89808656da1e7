"""Django REST framework authentication with Tessera's tokens.

Settings::

    TESSERA = {
        "JWKS_URL": "http://auth:8000/.well-known/jwks.json",
        "REVOCATIONS": {"url": "http://auth:8000",
                        "client_id": "tc_...", "client_secret": "..."},
    }
    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "tessera_verify.django.TesseraAuthentication",
        ],
    }

``TESSERA`` takes every option of :class:`tessera_verify.Verifier` under its
name in upper case (``JWKS_URL``, ``SECRET``, ``PUBLIC_KEY``, ``ALGORITHM``,
``ALGORITHMS``, ``ISSUER``, ``AUDIENCE``, ``LEEWAY``, ``TOKEN_TYPE``,
``USER_ID_CLAIM``, ``SUBJECT``, ``CLAIM_NAMES``, ``JWKS_MIN_INTERVAL``,
``JWKS_MAX_AGE``, ``INTROSPECTION_URL``, ``INTROSPECTION_TTL``,
``REVOCATIONS``), and two of this module's own: ``AUTH_HEADER_TYPES`` (the
schemes of the ``Authorization`` header, ``["Bearer"]`` as simplejwt's) and
``USERNAME_CLAIM`` (``CLAIM_NAMES["username"]``, or ``"username"``).
``CLAIM_NAMES`` is Tessera's ``claim_names`` table, e.g. ``{"username":
"user_name", "is_staff": "is_admin"}``: ``request.user`` reads the username,
``is_staff`` and ``is_superuser`` under those names.

:class:`TesseraAuthentication` makes ``request.user`` a :class:`TesseraUser`
read from the token's claims, with no database query, and ``request.auth``
the token string itself. :class:`TesseraModelAuthentication` loads the
project's own user by the token's user id instead.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Set, Tuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.signals import setting_changed
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ._options import VERIFIER_OPTIONS as _OPTION_NAMES
from . import (
    CHALLENGE,
    CHALLENGE_INVALID,
    ConfigurationError,
    FeedUnavailable,
    TokenRefused,
    Verifier,
    bearer_token,
    refusal_body,
)

__all__ = [
    "TesseraAuthentication",
    "TesseraModelAuthentication",
    "TesseraUser",
    "TesseraToken",
    "InvalidToken",
    "ServiceUnavailable",
    "get_verifier",
]

#: The keys of ``TESSERA`` that are options of Verifier, and their keyword.
VERIFIER_OPTIONS: Dict[str, str] = {name.upper(): name for name in _OPTION_NAMES}
#: The keys of ``TESSERA`` that this module reads itself.
OWN_OPTIONS: FrozenSet[str] = frozenset({"AUTH_HEADER_TYPES", "USERNAME_CLAIM"})

# Marks a request whose token was refused, so that the challenge DRF asks of
# the first authenticator (APIView.get_authenticate_header) says why.
_REFUSED = "_tessera_token_refused"
_BEARER = "Bearer"


@dataclass(frozen=True)
class _Config:
    """What the ``TESSERA`` setting makes: the Verifier and how to read."""

    verifier: Verifier
    schemes: List[str]
    user_id_claim: str
    username_claim: str
    staff_claim: str
    superuser_claim: str
    roles_claim: str
    challenge: str
    challenge_invalid: str


_lock = threading.Lock()
_config: Optional[_Config] = None


def _build() -> _Config:
    """Reads ``settings.TESSERA`` into a _Config; ImproperlyConfigured for
    anything that cannot make one."""
    given = getattr(settings, "TESSERA", None)
    if given is None:
        raise ImproperlyConfigured(
            "tessera_verify.django needs a TESSERA setting, e.g. "
            'TESSERA = {"JWKS_URL": "http://auth:8000/.well-known/jwks.json"}'
        )
    if not isinstance(given, Mapping):
        raise ImproperlyConfigured(
            f"TESSERA must be a dict, not {type(given).__name__}"
        )
    unknown = sorted(
        str(key) for key in given if key not in VERIFIER_OPTIONS and key not in OWN_OPTIONS
    )
    if unknown:
        raise ImproperlyConfigured(
            f"unknown key(s) in TESSERA: {', '.join(unknown)} (known: "
            f"{', '.join(sorted([*VERIFIER_OPTIONS, *OWN_OPTIONS]))})"
        )
    schemes_given = given.get("AUTH_HEADER_TYPES", [_BEARER])
    # simplejwt takes a single string as well as a list.
    if isinstance(schemes_given, str):
        schemes_given = [schemes_given]
    if (
        not isinstance(schemes_given, (list, tuple))
        or not schemes_given
        or not all(isinstance(s, str) and s and " " not in s for s in schemes_given)
    ):
        raise ImproperlyConfigured(
            "TESSERA['AUTH_HEADER_TYPES'] must be a non-empty list of schemes, "
            'e.g. ["Bearer"]'
        )
    schemes = list(schemes_given)
    claim_names = given.get("CLAIM_NAMES") or {}
    if not isinstance(claim_names, Mapping):
        raise ImproperlyConfigured(
            'TESSERA[\'CLAIM_NAMES\'] must be a dict, e.g. {"username": "user_name"}'
        )
    username_claim = given.get("USERNAME_CLAIM", claim_names.get("username", "username"))
    if not isinstance(username_claim, str) or not username_claim:
        raise ImproperlyConfigured("TESSERA['USERNAME_CLAIM'] must be a claim name")
    user_id_claim = given.get("USER_ID_CLAIM") or "user_id"
    options = {VERIFIER_OPTIONS[k]: v for k, v in given.items() if k in VERIFIER_OPTIONS}
    try:
        verifier = Verifier(**options)
    except (ConfigurationError, TypeError, ValueError) as error:
        # TypeError: a value of the wrong type, refused by the Rust half's
        # argument conversion before it could say ConfigurationError.
        raise ImproperlyConfigured(f"TESSERA: {error}") from error
    # The challenge names the first scheme, as simplejwt's does.
    scheme = schemes[0]
    return _Config(
        verifier=verifier,
        schemes=schemes,
        user_id_claim=str(user_id_claim),
        username_claim=username_claim,
        staff_claim=str(claim_names.get("is_staff", "is_staff")),
        superuser_claim=str(claim_names.get("is_superuser", "is_superuser")),
        roles_claim=str(claim_names.get("roles", "roles")),
        challenge=scheme + CHALLENGE[len(_BEARER):],
        challenge_invalid=scheme + CHALLENGE_INVALID[len(_BEARER):],
    )


def _current() -> _Config:
    """The _Config of the current ``TESSERA`` setting, built on first use."""
    config = _config
    if config is not None:
        return config
    return _rebuild()


def _rebuild() -> _Config:
    global _config
    with _lock:
        # Another thread may have built it while this one waited.
        if _config is None:
            _config = _build()
        return _config


def _setting_changed(*, setting: str, **_: Any) -> None:
    """Drops the Verifier when ``TESSERA`` changes (override_settings), so
    that the next request builds one from the new value."""
    global _config
    if setting == "TESSERA":
        with _lock:
            _config = None


setting_changed.connect(_setting_changed, dispatch_uid="tessera_verify.django")


def get_verifier() -> Verifier:
    """The process's one Verifier, made from ``settings.TESSERA`` on first
    use (and again after the setting changes). Raises ImproperlyConfigured
    when the setting cannot make one."""
    return _current().verifier


class InvalidToken(exceptions.AuthenticationFailed):  # type: ignore[misc]
    """A refused token: DRF's 401 with Tessera's body
    ``{"detail", "code": "token_not_valid", "reason"}``; ``reason`` is
    the TokenRefused reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(refusal_body(reason))
        self.reason = reason


class ServiceUnavailable(exceptions.APIException):  # type: ignore[misc]
    """503 while the revocation feed has been out of reach past
    ``max_staleness``; ``wait`` (whole seconds) becomes ``Retry-After``
    through DRF's exception handler."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable, try again later."
    default_code = "service_unavailable"

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait


class TesseraToken(str):
    """``request.auth``: the token string itself, exactly as the client sent
    it, so that ``f"Bearer {request.auth}"`` forwards it unchanged (with
    simplejwt, ``str(request.auth)`` signs the claims again, without
    Tessera's ``kid``). It also answers simplejwt's ``request.auth.token``
    (the same string, a plain ``str``) and ``request.auth.payload`` (the
    verified claims), so that code written for simplejwt keeps working.
    """

    payload: Dict[str, Any]

    def __new__(cls, token: str, payload: Dict[str, Any]) -> "TesseraToken":
        self = super().__new__(cls, token)
        self.payload = payload
        return self

    @property
    def token(self) -> str:
        """The token as a plain ``str`` (simplejwt's ``Token.token``)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        # Never the token itself: reprs end up in logs and error reports.
        return f"<TesseraToken sub={self.payload.get('sub')!r}>"


class TesseraUser:
    """The user of a verified token, with no database behind it, as
    simplejwt's ``TokenUser``: ``id``/``pk`` from the user id claim,
    ``username`` from the username claim, ``is_staff``/``is_superuser``
    from the claims of those names, or the names ``TESSERA["CLAIM_NAMES"]``
    gives them (False when absent), ``roles`` the role names of the
    ``roles`` claim (Tessera's ``extra_claims = ["roles"]``: the user's
    Django groups when imported; ``[]`` when absent), always active and
    authenticated, no groups or permissions (but a superuser's, as Django
    grants them). ``claims`` (and ``token``, simplejwt's name) is the
    verified claims dict; other claims read as attributes (None when
    absent), as with ``TokenUser``.
    """

    is_active = True
    is_anonymous = False
    is_authenticated = True

    def __init__(
        self,
        claims: Dict[str, Any],
        user_id_claim: str = "user_id",
        username_claim: str = "username",
        staff_claim: str = "is_staff",
        superuser_claim: str = "is_superuser",
        roles_claim: str = "roles",
    ) -> None:
        self.claims: Dict[str, Any] = claims
        self.token: Dict[str, Any] = claims
        self.id: Any = claims[user_id_claim]
        self.pk: Any = self.id
        username = claims.get(username_claim, "")
        self.username: str = username if isinstance(username, str) else str(username)
        self.is_staff: bool = claims.get(staff_claim) is True
        self.is_superuser: bool = claims.get(superuser_claim) is True
        roles = claims.get(roles_claim)
        self.roles: List[str] = (
            [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []
        )

    def __str__(self) -> str:
        return f"TesseraUser {self.id}"

    def __repr__(self) -> str:
        return f"<TesseraUser id={self.id!r} username={self.username!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TesseraUser):
            return NotImplemented
        return bool(self.id == other.id)

    def __hash__(self) -> int:
        return hash(self.id)

    def __getattr__(self, name: str) -> Any:
        # Only called for names the class does not have: the claims a
        # project added (simplejwt's TokenUser reads them the same way).
        # Private and dunder names stay AttributeError, for copy and pickle.
        if name.startswith("_"):
            raise AttributeError(name)
        return self.__dict__.get("claims", {}).get(name)

    def get_username(self) -> str:
        """The username claim."""
        return self.username

    @property
    def groups(self) -> Any:
        """An empty Group manager, as AnonymousUser's."""
        return _empty_managers()[0]

    @property
    def user_permissions(self) -> Any:
        """An empty Permission manager, as AnonymousUser's."""
        return _empty_managers()[1]

    def get_user_permissions(self, obj: Optional[object] = None) -> Set[str]:
        """No permissions: none are stored for a token's user."""
        return set()

    def get_group_permissions(self, obj: Optional[object] = None) -> Set[str]:
        """No permissions: none are stored for a token's user."""
        return set()

    def get_all_permissions(self, obj: Optional[object] = None) -> Set[str]:
        """No permissions: none are stored for a token's user."""
        return set()

    def has_perm(self, perm: str, obj: Optional[object] = None) -> bool:
        """True only for a superuser (Django grants an active superuser
        every permission)."""
        return self.is_superuser

    def has_perms(self, perm_list: Any, obj: Optional[object] = None) -> bool:
        """True only for a superuser."""
        return self.is_superuser

    def has_module_perms(self, app_label: str) -> bool:
        """True only for a superuser."""
        return self.is_superuser

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Raises NotImplementedError: a token's user has no row."""
        raise NotImplementedError("Tessera's token users have no DB representation")

    def delete(self, *args: Any, **kwargs: Any) -> None:
        """Raises NotImplementedError: a token's user has no row."""
        raise NotImplementedError("Tessera's token users have no DB representation")

    def set_password(self, raw_password: str) -> None:
        """Raises NotImplementedError: passwords are Tessera's."""
        raise NotImplementedError("Tessera's token users have no DB representation")

    def check_password(self, raw_password: str) -> bool:
        """Raises NotImplementedError: passwords are Tessera's."""
        raise NotImplementedError("Tessera's token users have no DB representation")


_managers: Optional[Tuple[Any, Any]] = None


def _empty_managers() -> Tuple[Any, Any]:
    # Made on first use: django.contrib.auth.models needs the app registry,
    # which is not ready when settings import this module.
    global _managers
    if _managers is None:
        from django.contrib.auth.models import Group, Permission
        from django.db.models.manager import EmptyManager

        _managers = (EmptyManager(Group), EmptyManager(Permission))
    return _managers


class TesseraAuthentication(BaseAuthentication):  # type: ignore[misc]
    """DRF authentication by Tessera's access token, verified in this
    process with Tessera's own code (the GIL released, no request to
    Tessera, no database query).

    No bearer credentials: None, so that DRF answers 401
    ``not_authenticated`` with ``WWW-Authenticate: Bearer realm="api"``.
    A refused token: 401 with Tessera's body and ``WWW-Authenticate:
    Bearer realm="api", error="invalid_token"``. The revocation feed out of
    reach past ``max_staleness``: 503 with ``Retry-After``. Otherwise
    ``request.user`` is a :class:`TesseraUser` and ``request.auth`` the
    token string, a :class:`TesseraToken` (forward it as
    ``f"Bearer {request.auth}"``).
    """

    def authenticate(self, request: Request) -> Optional[Tuple[Any, TesseraToken]]:
        """``(user, token)`` for a good token; None without one."""
        config = _current()
        try:
            token = bearer_token(request.META.get("HTTP_AUTHORIZATION"), config.schemes)
            if token is None:
                return None
            claims = config.verifier.verify(token)
        except TokenRefused as refused:
            setattr(request, _REFUSED, True)
            raise InvalidToken(refused.reason) from None
        except FeedUnavailable as unavailable:
            raise ServiceUnavailable(int(unavailable.retry_after_header)) from None
        return self.get_user(claims), TesseraToken(token, claims)

    def get_user(self, claims: Dict[str, Any]) -> Any:
        """The ``request.user`` of verified claims: a TesseraUser."""
        config = _current()
        return TesseraUser(
            claims,
            config.user_id_claim,
            config.username_claim,
            config.staff_claim,
            config.superuser_claim,
            config.roles_claim,
        )

    def authenticate_header(self, request: Request) -> str:
        """The ``WWW-Authenticate`` of DRF's 401: with
        ``error="invalid_token"`` when this request's token was refused."""
        config = _current()
        if getattr(request, _REFUSED, False):
            return config.challenge_invalid
        return config.challenge


class TesseraModelAuthentication(TesseraAuthentication):
    """TesseraAuthentication for projects that keep their user table:
    ``request.user`` is ``get_user_model()``'s row whose primary key is the
    token's user id (one query); the claims are ``request.auth.payload``.
    A missing user answers 401
    ``{"detail": "User not found", "code": "user_not_found"}``, an inactive
    one ``{"detail": "User is inactive", "code": "user_inactive"}``, as
    simplejwt's JWTAuthentication does.
    """

    def authenticate(self, request: Request) -> Optional[Tuple[Any, TesseraToken]]:
        """``(user, token)`` for a good token of a known, active user."""
        try:
            return super().authenticate(request)
        except _UserRefused as refused:
            # The token does not authenticate anyone: the client should not
            # retry it (RFC 6750's invalid_token).
            setattr(request, _REFUSED, True)
            raise exceptions.AuthenticationFailed(
                {"detail": refused.detail, "code": refused.code}
            ) from None

    def get_user(self, claims: Dict[str, Any]) -> Any:
        """The project's user of the token's user id, active."""
        model = get_user_model()
        try:
            user = model._default_manager.get(pk=claims[_current().user_id_claim])
        except (model.DoesNotExist, ValidationError, ValueError, TypeError):
            # An id the primary key cannot take (a UUID key) is no user either.
            raise _UserRefused("User not found", "user_not_found") from None
        if not getattr(user, "is_active", True):
            raise _UserRefused("User is inactive", "user_inactive")
        return user


class _UserRefused(Exception):
    """get_user's refusal, turned into DRF's 401 by authenticate."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
