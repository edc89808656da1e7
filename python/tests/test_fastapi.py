"""tessera_verify.fastapi against a real Tessera, through FastAPI's
TestClient: the claims of a good token, HTTPBearer's answers (401
{"detail": ...} with WWW-Authenticate: Bearer), 503 when revocations cannot
be checked, a logout or deactivation refused within a second with no request
to Tessera per verification, and the bearer scheme in /openapi.json."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Dict, Optional

import pytest
import requests
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from conftest import Tessera, wait_until
from tessera_verify import ConfigurationError, TokenRefused, Verifier
from tessera_verify.fastapi import TesseraBearer, TesseraClient

REFUSED = {"detail": "Given token not valid for any token type"}


def make_app(tessera: TesseraBearer, clients: Optional[TesseraClient] = None) -> TestClient:
    app = FastAPI()
    optional = TesseraBearer(tessera.verifier, auto_error=False)

    @app.get("/orders")
    def orders(claims: Dict[str, Any] = Depends(tessera)) -> Dict[str, Any]:
        return {"claims": claims}

    @app.get("/async")
    async def async_orders(claims: Dict[str, Any] = Depends(tessera)) -> Dict[str, Any]:
        return {"user_id": claims["user_id"]}

    @app.get("/maybe")
    def maybe(claims: Optional[Dict[str, Any]] = Depends(optional)) -> Dict[str, Any]:
        return {"claims": claims}

    @app.get("/public")
    def public() -> Dict[str, str]:
        return {"ok": "yes"}

    if clients is not None:

        @app.get("/internal")
        def internal(claims: Dict[str, Any] = Depends(clients)) -> Dict[str, Any]:
            return {"client_id": claims["client_id"]}

    return TestClient(app)


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == REFUSED
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Retry-After" not in response.headers


def not_authenticated(response: Any) -> None:
    # What fastapi.security.HTTPBearer answers itself.
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.fixture(scope="module")
def client(tessera: Tessera) -> TestClient:
    return make_app(TesseraBearer(jwks_url=tessera.jwks_url))


def test_a_good_token_gives_its_claims(tessera: Tessera, client: TestClient) -> None:
    user = tessera.user()
    r = client.get("/orders", headers=bearer(user.access))
    assert r.status_code == 200, r.text
    claims = r.json()["claims"]
    assert claims["user_id"] == user.id
    assert claims["username"] == user.username
    assert claims["token_type"] == "access"
    r = client.get("/async", headers=bearer(user.access))
    assert (r.status_code, r.json()) == (200, {"user_id": user.id})
    r = client.get("/maybe", headers=bearer(user.access))
    assert (r.status_code, r.json()["claims"]["user_id"]) == (200, user.id)


def test_no_credentials_answer_as_httpbearer(client: TestClient) -> None:
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Token abc"}, {"Authorization": "Bearer"}):
        not_authenticated(client.get("/orders", headers=headers))
        # With auto_error=False, None.
        r = client.get("/maybe", headers=headers)
        assert (r.status_code, r.json()) == (200, {"claims": None}), headers
    assert client.get("/public").status_code == 200


def test_each_refusal_answers_401_with_tesseras_detail(tessera: Tessera, client: TestClient) -> None:
    user = tessera.user()
    for headers in (
        bearer(user.access[:-4] + "AAAA"),   # invalid: tampered
        bearer("not.a.token"),
        bearer(user.refresh),                 # wrong_type
        {"Authorization": "Bearer a b"},      # unreadable after the scheme
        [("Authorization", f"Bearer {user.access}")] * 2,   # two headers
    ):
        refused(client.get("/orders", headers=headers))
        # A token present but refused is refused with auto_error=False too.
        refused(client.get("/maybe", headers=headers))


def test_a_one_megabyte_header_is_refused_as_invalid(tessera: Tessera, client: TestClient) -> None:
    refused(client.get("/orders", headers=bearer("a" * 1_000_000)))
    assert client.get("/orders", headers=bearer(tessera.user().access)).status_code == 200


def test_an_expired_token_is_refused() -> None:
    server = Tessera(settings='access_token_lifetime = "1s"')
    try:
        client = make_app(TesseraBearer(jwks_url=server.jwks_url))
        user = server.user()
        verifier = Verifier(jwks_url=server.jwks_url)
        wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 401, within=3)
        refused(client.get("/orders", headers=bearer(user.access)))
        # The refusal is for expiry (the detail does not say; the verifier does).
        with pytest.raises(TokenRefused) as why:
            verifier.verify(user.access)
        assert why.value.reason == "expired"
    finally:
        server.close()


def test_a_logged_out_token_is_refused_within_a_second_with_no_request_per_verification(
    fresh_tessera: Tessera,
) -> None:
    tessera = TesseraBearer(jwks_url=fresh_tessera.jwks_url, revocations=fresh_tessera.client())
    client = make_app(tessera)
    user = fresh_tessera.user()
    user_id = user.id
    first = client.get("/async", headers=bearer(user.access))
    assert (first.status_code, first.json()) == (200, {"user_id": user_id})
    wait_until(lambda: tessera.verifier.status()["connected"], within=5)
    for path in ("/orders", "/async") * 100:
        assert client.get(path, headers=bearer(user.access)).status_code == 200
    user.logout()
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 401, within=1.0)
    refused(client.get("/orders", headers=bearer(user.access)))
    refused(client.get("/async", headers=bearer(user.access)))
    assert_no_request_per_verification(fresh_tessera)


def test_a_deactivated_users_token_is_refused_within_a_second(tessera: Tessera) -> None:
    bearer_dep = TesseraBearer(jwks_url=tessera.jwks_url, revocations=tessera.client())
    client = make_app(bearer_dep)
    user = tessera.user()
    assert client.get("/orders", headers=bearer(user.access)).status_code == 200
    wait_until(lambda: bearer_dep.verifier.status()["connected"], within=5)
    tessera.cli("users", "deactivate", user.username)
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 401, within=1.0)
    refused(client.get("/orders", headers=bearer(user.access)))


def test_revocations_out_of_reach_answer_503_with_retry_after(tessera: Tessera) -> None:
    feed = tessera.client()
    feed["client_secret"] = "wrong"
    client = make_app(TesseraBearer(jwks_url=tessera.jwks_url, revocations={**feed, "max_staleness": 1}))
    user = tessera.user()
    assert client.get("/orders", headers=bearer(user.access)).status_code == 200
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 503, within=5)
    for path in ("/orders", "/async"):
        r = client.get(path, headers=bearer(user.access))
        assert r.status_code == 503
        assert r.json() == {"detail": "Service temporarily unavailable, try again later."}
        assert re.fullmatch(r"[1-9][0-9]*", r.headers["Retry-After"]), r.headers["Retry-After"]
        assert "WWW-Authenticate" not in r.headers
    refused(client.get("/orders", headers=bearer(user.refresh)))


def test_openapi_shows_an_http_bearer_scheme_on_the_protected_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"] == {
        "TesseraBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    paths = schema["paths"]
    for path in ("/orders", "/async", "/maybe"):
        assert paths[path]["get"]["security"] == [{"TesseraBearer": []}], path
    assert "security" not in paths["/public"]["get"]
    assert client.get("/docs").status_code == 200


def test_service_client_tokens_with_a_required_scope(tessera: Tessera) -> None:
    bearer_dep = TesseraBearer(jwks_url=tessera.jwks_url)
    clients = TesseraClient(bearer_dep.verifier, scopes=["introspect"])
    client = make_app(bearer_dep, clients)

    def client_token(scope: str) -> str:
        return _client_token(tessera, tessera.client(scope=scope))

    holder = client_token("introspect revocations")
    r = client.get("/internal", headers=bearer(holder))
    assert r.status_code == 200, r.text
    assert r.json()["client_id"].startswith("tc_")
    r = client.get("/internal", headers=bearer(client_token("revocations")))
    assert r.status_code == 403
    assert r.json() == {"detail": "Not enough permissions"}
    assert r.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="introspect"'
    # A user's token is not a client's, and a client's is not a user's.
    refused(client.get("/internal", headers=bearer(tessera.user().access)))
    refused(client.get("/orders", headers=bearer(holder)))
    not_authenticated(client.get("/internal"))


def test_options_that_cannot_make_a_verifier_fail_at_once(tessera: Tessera) -> None:
    for options in (
        {},
        {"jwks_url": tessera.jwks_url, "secret": "s" * 32},
        {"secret": "short"},
        {"jwks_url": tessera.jwks_url, "revocations": {"url": "ftp://a", "client_id": "x", "client_secret": "y"}},
    ):
        with pytest.raises(ConfigurationError):
            TesseraBearer(**options)
    with pytest.raises(ConfigurationError):
        TesseraBearer(Verifier(jwks_url=tessera.jwks_url), issuer="x")
    with pytest.raises(ConfigurationError):
        TesseraClient(jwks_url=tessera.jwks_url, scopes="introspect")
    with pytest.raises(TypeError):
        TesseraBearer(jwks_url=tessera.jwks_url, no_such_option=1)
    # Options reach the verifier: another issuer refuses.
    client = make_app(TesseraBearer(jwks_url=tessera.jwks_url, issuer="https://elsewhere.example"))
    refused(client.get("/orders", headers=bearer(tessera.user().access)))


def _client_token(tessera: Tessera, client: Dict[str, str]) -> str:
    r = requests.post(
        tessera.url("/oauth/token"),
        data={"grant_type": "client_credentials", "client_id": client["client_id"],
              "client_secret": client["client_secret"]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_a_removed_clients_token_is_refused_within_a_second(tessera: Tessera) -> None:
    clients = TesseraClient(jwks_url=tessera.jwks_url, revocations=tessera.client())
    client = make_app(TesseraBearer(clients.verifier), clients)
    caller = tessera.client(name="caller-to-remove")
    token = _client_token(tessera, caller)
    assert client.get("/internal", headers=bearer(token)).status_code == 200
    wait_until(lambda: clients.verifier.status()["connected"], within=5)
    tessera.cli("clients", "remove", "caller-to-remove")
    wait_until(lambda: client.get("/internal", headers=bearer(token)).status_code == 401, within=1.0)
    refused(client.get("/internal", headers=bearer(token)))


def assert_no_request_per_verification(tessera: Tessera) -> None:
    """Tessera's request log, read whole (its lines may be written late on a
    busy machine): the test's own requests and the verifier's few (JWKS,
    client token, snapshot, stream), none of them once per verification."""
    for path in ("/api/auth/logout", "/api/revocations/stream"):
        wait_until(lambda: tessera.requests_to(path) >= 1, within=5)
    log = tessera.log()
    paths = Counter(re.findall(r"path=(\S+?)[} ]", log))
    assert set(paths) <= {
        "/api/auth/signup", "/api/token", "/api/token/", "/api/auth/me", "/api/auth/logout",
        "/.well-known/jwks.json", "/oauth/token", "/api/revocations", "/api/revocations/stream",
    }, paths
    assert paths["/api/auth/logout"] == 1, paths
    for path in ("/.well-known/jwks.json", "/oauth/token", "/api/revocations", "/api/revocations/stream"):
        assert 1 <= paths[path] <= 2, paths
