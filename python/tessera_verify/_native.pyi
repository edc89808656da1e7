"""Type stubs of tessera_verify's Rust half."""

from typing import Any, Dict, List, Mapping, Optional, TypedDict, Union

class FeedStatus(TypedDict):
    started: bool
    connected: bool
    current: bool
    lag: Optional[float]
    cursor: Optional[str]
    markers: int
    last_error: Optional[str]

class Verifier:
    """Checks Tessera's tokens exactly as Tessera does.

    Give exactly one key source: ``jwks_url`` (Tessera's
    ``/.well-known/jwks.json``; fetched on first use, cached, refetched on
    an unknown ``kid``), ``secret`` (the shared HMAC secret, with
    ``algorithm`` ``HS256`` by default) or ``public_key`` (a PEM public key,
    with its ``algorithm``). ``revocations`` follows Tessera's revocation
    feed: ``{"url": ..., "client_id": ..., "client_secret": ...}`` and
    optionally ``max_staleness`` (seconds, 60), ``fail_open`` (False) and
    ``idle_timeout`` (seconds, 45). ``claim_names`` is Tessera's
    ``claim_names`` table (``{"username": "user_name", "is_staff":
    "is_admin"}``): the username is read under its name. Raises ``ConfigurationError`` for
    options that cannot make a verifier. Starts no thread: the follower
    starts in the process that first verifies (again after a fork).
    """

    def __init__(
        self,
        *,
        jwks_url: Optional[str] = None,
        secret: Optional[Union[str, bytes]] = None,
        public_key: Optional[Union[str, bytes]] = None,
        algorithm: Optional[str] = None,
        algorithms: Optional[List[str]] = None,
        issuer: Optional[str] = None,
        audience: Optional[str] = None,
        leeway: float = 0.0,
        token_type: str = "access",
        user_id_claim: Optional[str] = None,
        subject: str = "user_id",
        claim_names: Optional[Mapping[str, str]] = None,
        jwks_min_interval: float = 10.0,
        jwks_max_age: float = 300.0,
        introspection_url: Optional[str] = None,
        introspection_ttl: float = 5.0,
        revocations: Optional[Mapping[str, Any]] = None,
    ) -> None: ...
    def verify(self, token: Union[str, bytes]) -> Dict[str, Any]:
        """The token's claims; raises ``TokenRefused`` (``.reason``) or
        ``FeedUnavailable``. Releases the GIL while it checks."""
    def verify_client(self, token: Union[str, bytes]) -> Dict[str, Any]:
        """A service client's token (``client_credentials``): ``client_id``,
        ``sub``, ``scopes``, ``jti``, ``iat``, ``exp``."""
    def start(self) -> None:
        """Starts following the feed in this process now."""
    def status(self) -> Optional[FeedStatus]:
        """Where the feed's follower stands in this process; ``None``
        without ``revocations``."""

def bearer_token(
    value: Optional[Union[str, bytes]], schemes: Optional[List[str]] = None
) -> Optional[str]:
    """The token of an ``Authorization`` header value, read as Tessera reads
    it; ``None`` without bearer credentials; ``TokenRefused("invalid")`` when
    what follows the scheme cannot be a token."""

def refusal_body(reason: str) -> Dict[str, Any]:
    """Tessera's 401 body for a refused token."""

NOT_AUTHENTICATED_BODY: Dict[str, Any]
CHALLENGE: str
CHALLENGE_INVALID: str
