"""tessera_verify.Verifier against a real Tessera: the claims of a good
token, each refusal with its reason, the revocation feed, and bad input."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import requests

from conftest import Tessera, wait_until
from tessera_verify import (
    ConfigurationError,
    FeedUnavailable,
    TokenRefused,
    Verifier,
    bearer_token,
)


def reason(verifier: Verifier, token) -> str:
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(token)
    return refused.value.reason


def test_a_good_token_gives_its_claims(tessera: Tessera) -> None:
    user = tessera.user()
    claims = Verifier(jwks_url=tessera.jwks_url).verify(user.access)
    assert claims["user_id"] == user.id
    assert claims["token_type"] == "access"
    assert len(claims["jti"]) == 32
    assert isinstance(claims["exp"], int)


def test_each_refusal_has_its_reason(tessera: Tessera) -> None:
    user = tessera.user()
    verifier = Verifier(jwks_url=tessera.jwks_url)
    assert reason(verifier, user.refresh) == "wrong_type"
    assert reason(verifier, user.access[:-4] + "AAAA") == "invalid"
    assert reason(verifier, "not.a.token") == "invalid"
    # Expired: verified as if later than the token's expiry, with no leeway.
    strict = Verifier(jwks_url=tessera.jwks_url, issuer="https://elsewhere.example")
    assert reason(strict, user.access) == "invalid"


def test_bytes_tokens_are_read_and_other_types_refused(tessera: Tessera) -> None:
    user = tessera.user()
    verifier = Verifier(jwks_url=tessera.jwks_url)
    assert verifier.verify(user.access.encode())["user_id"] == user.id
    for bad in (None, 42, 4.2, ["a"], {"token": user.access}, b"\xff\xfe", "", "é" * 10, "a" * 1_000_000):
        assert reason(verifier, bad) == "invalid", repr(bad)[:40]
    # The verifier is unharmed.
    assert verifier.verify(user.access)["user_id"] == user.id


def test_options_that_cannot_make_a_verifier_are_refused_at_once() -> None:
    for options in (
        {},
        {"jwks_url": "http://a", "secret": "s" * 32},
        {"secret": "short"},
        {"secret": "s" * 32, "algorithm": "none"},
        {"public_key": "not a pem", "algorithm": "ES256"},
        {"public_key": "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"},
        {"jwks_url": "http://a", "token_type": "id"},
        {"jwks_url": "http://a", "subject": "email"},
        {"jwks_url": "http://a", "leeway": -1},
        {"jwks_url": "http://a", "revocations": {"url": "ftp://a", "client_id": "x", "client_secret": "y"}},
        {"jwks_url": "http://a", "revocations": {"url": "http://a"}},
        {"jwks_url": "http://a", "revocations": {"url": "http://a", "client_id": "x", "client_secret": "y", "max_stale": 1}},
    ):
        with pytest.raises(ConfigurationError):
            Verifier(**options)
    assert issubclass(ConfigurationError, ValueError)
    # A verifier is given a public key: the error says so.
    with pytest.raises(ConfigurationError, match="not a public key usable with ES256"):
        Verifier(public_key="not a pem", algorithm="ES256")


#: The simplejwt tutorial's claims, by Tessera's settings.
TUTORIAL = (
    'extra_claims = ["email", "is_staff", "is_superuser"]\n'
    'claim_names = { username = "user_name", is_staff = "is_admin" }\n'
    'subject = "username"'
)
TUTORIAL_NAMES = {"username": "user_name", "is_staff": "is_admin"}


@pytest.fixture(scope="module")
def tutorial() -> Iterator[Tessera]:
    server = Tessera(TUTORIAL)
    yield server
    server.close()


def test_renamed_claims_are_read_under_tesseras_names(tutorial: Tessera) -> None:
    user = tutorial.user()
    verifier = Verifier(jwks_url=tutorial.jwks_url, subject="username", claim_names=TUTORIAL_NAMES)
    claims = verifier.verify(user.access)
    assert (claims["user_name"], claims["is_admin"], claims["is_superuser"]) == (
        user.username,
        False,
        False,
    )
    assert "username" not in claims and "is_staff" not in claims
    # Not told the names, a verifier finds no username to back `sub`, as
    # Tessera itself would not.
    unaware = Verifier(jwks_url=tutorial.jwks_url, subject="username")
    assert reason(unaware, user.access) == "invalid"


def test_claim_names_that_tessera_would_refuse_are_refused() -> None:
    for names, message in (
        ({"username": "sub"}, "`username` cannot be renamed `sub`, a claim Tessera writes itself"),
        ({"is_staff": "x", "is_superuser": "x"}, "`is_staff` and `is_superuser` are both renamed `x`"),
        ({"fresh": "f"}, "claim_names keys must be among username, email, is_staff, is_superuser, roles, app_metadata, not \"fresh\""),
        ({"username": 1}, 'claim_names["username"] must be a string'),
    ):
        with pytest.raises(ConfigurationError) as refused:
            Verifier(jwks_url="http://a", claim_names=names)
        assert message in str(refused.value), str(refused.value)


def test_the_authorization_header_is_read_as_tessera_reads_it() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token(None) is None
    assert bearer_token("Basic dXNlcjpwYXNz") is None
    assert bearer_token("JWT abc", ["JWT"]) == "abc"
    with pytest.raises(TokenRefused) as refused:
        bearer_token("Bearer caf\u00e9")
    assert refused.value.reason == "invalid"


def test_the_feed_refuses_a_logged_out_token_within_a_second(tessera: Tessera) -> None:
    verifier = Verifier(jwks_url=tessera.jwks_url, revocations=tessera.client())
    user = tessera.user()
    assert verifier.verify(user.access)["user_id"] == user.id
    wait_until(lambda: verifier.status()["connected"], within=5)
    user.logout()
    wait_until(lambda: _refused(verifier, user.access) == "revoked", within=1.0)
    status = verifier.status()
    assert status["started"] and status["connected"] and status["current"]
    assert status["cursor"] is not None and status["markers"] >= 1


def test_a_deactivated_users_token_is_refused_within_a_second(tessera: Tessera) -> None:
    verifier = Verifier(jwks_url=tessera.jwks_url, revocations=tessera.client())
    user = tessera.user()
    verifier.verify(user.access)
    wait_until(lambda: verifier.status()["connected"], within=5)
    tessera.cli("users", "deactivate", user.username)
    wait_until(lambda: _refused(verifier, user.access) == "revoked", within=1.0)


def test_a_role_change_makes_older_access_tokens_expired_and_the_refresh_carries_it(
    tessera: Tessera,
) -> None:
    verifier = Verifier(jwks_url=tessera.jwks_url, revocations=tessera.client())
    user = tessera.user()
    assert verifier.verify(user.access)["cver"] == 0
    wait_until(lambda: verifier.status()["connected"], within=5)
    assert tessera.cli("users", "roles", user.username, "--add", "editors") == "editors\n"
    # Expired, not revoked: the client refreshes, nobody is logged out.
    wait_until(lambda: _refused(verifier, user.access) == "expired", within=1.0)
    fresh = user.another_access()
    assert verifier.verify(fresh)["cver"] == 1


def _refused(verifier: Verifier, token: str):
    try:
        verifier.verify(token)
    except TokenRefused as refused:
        return refused.reason
    return None


def test_wrong_feed_credentials_fail_clearly_not_hang(tessera: Tessera) -> None:
    client = tessera.client()
    client["client_secret"] = "wrong"
    verifier = Verifier(
        jwks_url=tessera.jwks_url, revocations={**client, "max_staleness": 1}
    )
    user = tessera.user()
    start = time.monotonic()
    # Tokens its keys verify are accepted until max_staleness has passed
    # since the follower started, then refused as unavailable.
    verifier.verify(user.access)
    wait_until(lambda: verifier.status()["last_error"] is not None, within=5)
    assert "401" in verifier.status()["last_error"] or "invalid_client" in verifier.status()["last_error"]
    time.sleep(max(0.0, 1.2 - (time.monotonic() - start)))
    with pytest.raises(FeedUnavailable) as unavailable:
        verifier.verify(user.access)
    assert unavailable.value.retry_after >= 1
    assert time.monotonic() - start < 5


def test_no_request_to_tessera_per_verification(fresh_tessera: Tessera) -> None:
    verifier = Verifier(jwks_url=fresh_tessera.jwks_url, revocations=fresh_tessera.client())
    user = fresh_tessera.user()
    for _ in range(200):
        verifier.verify(user.access)
    wait_until(lambda: verifier.status()["connected"], within=5)
    for _ in range(200):
        verifier.verify(user.access)
    # The stream's line reaches the log once its answer has begun.
    wait_until(lambda: fresh_tessera.requests_to("/api/revocations/stream") >= 1, within=5)
    log = fresh_tessera.log()
    assert fresh_tessera.requests_to("/oauth/introspect", log) == 0
    assert fresh_tessera.requests_to("/api/auth/me", log) == 0
    for path in ("/.well-known/jwks.json", "/api/revocations", "/api/revocations/stream", "/oauth/token"):
        assert 1 <= fresh_tessera.requests_to(path, log) <= 2, (path, log)
