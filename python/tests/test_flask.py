"""tessera_verify.flask against a real Tessera, through Flask's test client:
the claims of a good token, Flask-JWT-Extended's answers for each refusal
(401 {"msg": ...} with Tessera's challenge), 503 when revocations cannot be
checked, and a logout or deactivation refused within a second with no
request to Tessera per verification."""

from __future__ import annotations

import datetime
import re
from collections import Counter
from typing import Any, Dict, Iterator, Tuple

import pytest
from flask import Flask, jsonify

from conftest import Tessera, wait_until
from tessera_verify import CHALLENGE, CHALLENGE_INVALID, ConfigurationError
from tessera_verify.flask import (
    Tessera as TesseraExtension,
    current_user_id,
    get_claims,
    tessera_required,
)


def make_app(**config: Any) -> Tuple[Flask, TesseraExtension]:
    app = Flask(__name__)
    app.config.update({"TESSERA_" + k.upper(): v for k, v in config.items()})
    ext = TesseraExtension()
    ext.init_app(app)

    @app.get("/orders")
    @tessera_required()
    def orders() -> Any:
        return jsonify(claims=get_claims(), user_id=current_user_id())

    @app.get("/maybe")
    @tessera_required(optional=True)
    def maybe() -> Any:
        return jsonify(claims=get_claims(), user_id=current_user_id())

    @app.get("/async")
    @tessera_required()
    async def async_view() -> Any:
        return jsonify(user_id=current_user_id())

    return app, ext


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: Any, msg: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json() == {"msg": msg}
    assert response.headers["WWW-Authenticate"] == CHALLENGE_INVALID
    assert "Retry-After" not in response.headers


@pytest.fixture(scope="module")
def app(tessera: Tessera) -> Flask:
    return make_app(jwks_url=tessera.jwks_url)[0]


def test_a_good_token_gives_its_claims(tessera: Tessera, app: Flask) -> None:
    user = tessera.user()
    r = app.test_client().get("/orders", headers=bearer(user.access))
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["user_id"] == user.id
    assert body["claims"]["user_id"] == user.id
    assert body["claims"]["token_type"] == "access"
    assert body["claims"]["username"] == user.username
    r = app.test_client().get("/async", headers=bearer(user.access))
    assert (r.status_code, r.get_json()) == (200, {"user_id": user.id})
    r = app.test_client().get("/maybe", headers=bearer(user.access))
    assert (r.status_code, r.get_json()["user_id"]) == (200, user.id)


def test_no_credentials_answer_flask_jwt_extendeds_401(app: Flask) -> None:
    client = app.test_client()
    for headers in ({}, {"Authorization": ""}, {"Authorization": "   "}):
        r = client.get("/orders", headers=headers)
        assert r.status_code == 401
        assert r.get_json() == {"msg": "Missing Authorization Header"}
        assert r.headers["WWW-Authenticate"] == CHALLENGE
    for value in ("Basic dXNlcjpwYXNz", "bearer abc.def.ghi", "Token abc", "Bearer"):
        r = client.get("/orders", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.get_json() == {
            "msg": "Missing 'Bearer' type in 'Authorization' header. "
            "Expected 'Authorization: Bearer <JWT>'"
        }, value
        assert r.headers["WWW-Authenticate"] == CHALLENGE
    # An optional view runs without credentials, with no claims.
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = client.get("/maybe", headers=headers)
        assert (r.status_code, r.get_json()) == (200, {"claims": {}, "user_id": None})


def test_each_refusal_answers_401_with_its_message(tessera: Tessera, app: Flask) -> None:
    user = tessera.user()
    client = app.test_client()
    refused(client.get("/orders", headers=bearer(user.access[:-4] + "AAAA")), "Invalid token")
    refused(client.get("/orders", headers=bearer("not.a.token")), "Invalid token")
    refused(client.get("/orders", headers=bearer(user.refresh)), "Only non-refresh tokens are allowed")
    # A token present but refused is refused on an optional view too.
    refused(client.get("/maybe", headers=bearer(user.refresh)), "Only non-refresh tokens are allowed")
    # The scheme is there but what follows cannot be a token.
    bad_header = "Bad Authorization header. Expected 'Authorization: Bearer <JWT>'"
    refused(client.get("/orders", headers={"Authorization": "Bearer a b"}), bad_header)
    refused(client.get("/orders", headers={"Authorization": "Bearer caf\u00e9"}), bad_header)
    # Two Authorization headers (which WSGI joins with ", "): refused rather
    # than one picked.
    r = client.get("/orders", headers=[("Authorization", f"Bearer {user.access}")] * 2)
    refused(r, bad_header)


def test_a_one_megabyte_header_is_refused_as_invalid(tessera: Tessera, app: Flask) -> None:
    r = app.test_client().get("/orders", headers=bearer("a" * 1_000_000))
    refused(r, "Invalid token")
    user = tessera.user()
    assert app.test_client().get("/orders", headers=bearer(user.access)).status_code == 200


@pytest.fixture(scope="module")
def short_lived() -> Iterator[Tessera]:
    server = Tessera(settings='access_token_lifetime = "1s"')
    yield server
    server.close()


def test_an_expired_token_answers_token_has_expired(short_lived: Tessera) -> None:
    app, _ = make_app(jwks_url=short_lived.jwks_url)
    client = app.test_client()
    user = short_lived.user()
    first = client.get("/orders", headers=bearer(user.access))
    # A 1 s token may already be past its second when the request is made.
    assert first.status_code in (200, 401)
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 401, within=3)
    refused(client.get("/orders", headers=bearer(user.access)), "Token has expired")
    # TESSERA_LEEWAY takes seconds or, as JWT_DECODE_LEEWAY, a timedelta.
    for leeway in (60, datetime.timedelta(minutes=1)):
        lenient, _ = make_app(jwks_url=short_lived.jwks_url, leeway=leeway)
        r = lenient.test_client().get("/orders", headers=bearer(user.access))
        assert (r.status_code, r.get_json()["claims"]["username"]) == (200, user.username), leeway


def test_a_logged_out_token_is_refused_within_a_second_with_no_request_per_verification(
    fresh_tessera: Tessera,
) -> None:
    app, ext = make_app(jwks_url=fresh_tessera.jwks_url, revocations=fresh_tessera.client())
    client = app.test_client()
    user = fresh_tessera.user()
    user_id = user.id
    first = client.get("/orders", headers=bearer(user.access))
    assert (first.status_code, first.get_json()["user_id"]) == (200, user_id)
    with app.app_context():
        verifier = ext.verifier()
    wait_until(lambda: verifier.status()["connected"], within=5)
    for _ in range(200):
        assert client.get("/orders", headers=bearer(user.access)).status_code == 200
    user.logout()
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 401, within=1.0)
    refused(client.get("/orders", headers=bearer(user.access)), "Token has been revoked")
    assert_no_request_per_verification(fresh_tessera)


def test_a_deactivated_users_token_is_refused_within_a_second(tessera: Tessera) -> None:
    app, ext = make_app(jwks_url=tessera.jwks_url, revocations=tessera.client())
    client = app.test_client()
    user = tessera.user()
    assert client.get("/orders", headers=bearer(user.access)).status_code == 200
    with app.app_context():
        verifier = ext.verifier()
    wait_until(lambda: verifier.status()["connected"], within=5)
    tessera.cli("users", "deactivate", user.username)
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 401, within=1.0)
    refused(client.get("/orders", headers=bearer(user.access)), "Token has been revoked")


def test_revocations_out_of_reach_answer_503_with_retry_after(tessera: Tessera) -> None:
    feed = tessera.client()
    feed["client_secret"] = "wrong"
    app, _ = make_app(jwks_url=tessera.jwks_url, revocations={**feed, "max_staleness": 1})
    client = app.test_client()
    user = tessera.user()
    # Accepted until max_staleness has passed since the follower started.
    assert client.get("/orders", headers=bearer(user.access)).status_code == 200
    wait_until(lambda: client.get("/orders", headers=bearer(user.access)).status_code == 503, within=5)
    r = client.get("/orders", headers=bearer(user.access))
    assert r.status_code == 503
    assert r.get_json() == {"msg": "Service temporarily unavailable, try again later."}
    assert re.fullmatch(r"[1-9][0-9]*", r.headers["Retry-After"]), r.headers["Retry-After"]
    assert "WWW-Authenticate" not in r.headers
    # A refused token is still refused for what it is.
    refused(client.get("/orders", headers=bearer(user.refresh)), "Only non-refresh tokens are allowed")


def test_the_answers_can_be_replaced(tessera: Tessera) -> None:
    app, ext = make_app(jwks_url=tessera.jwks_url)

    @ext.unauthorized_loader
    def unauthorized(message: str) -> Any:
        return jsonify(error="login", why=message), 401

    @ext.refused_loader
    def refused_token(reason: str) -> Any:
        return jsonify(error=reason), 422

    client = app.test_client()
    user = tessera.user()
    r = client.get("/orders")
    assert (r.status_code, r.get_json()) == (401, {"error": "login", "why": "Missing Authorization Header"})
    assert "WWW-Authenticate" not in r.headers
    r = client.get("/orders", headers=bearer(user.refresh))
    assert (r.status_code, r.get_json()) == (422, {"error": "wrong_type"})
    r = client.get("/orders", headers=bearer(user.access))
    assert r.status_code == 200


def test_the_app_errorhandlers_do_not_reshape_the_answers(tessera: Tessera) -> None:
    app, _ = make_app(jwks_url=tessera.jwks_url)

    @app.errorhandler(Exception)
    def everything(error: Exception) -> Any:
        return jsonify(caught=str(error)), 500

    r = app.test_client().get("/orders")
    assert (r.status_code, r.get_json()) == (401, {"msg": "Missing Authorization Header"})


def test_options_that_cannot_make_a_verifier_fail_at_init_app(tessera: Tessera) -> None:
    for config in (
        {},
        {"TESSERA_JWKS_URL": tessera.jwks_url, "TESSERA_SECRET": "s" * 32},
        {"TESSERA_SECRET": "short"},
        {"TESSERA_JWKS_URL": tessera.jwks_url, "TESSERA_HEADER_TYPE": ""},
        {"TESSERA_JWKS_URL": tessera.jwks_url, "TESSERA_REVOCATIONS": {"url": "ftp://a", "client_id": "x", "client_secret": "y"}},
    ):
        app = Flask(__name__)
        app.config.update(config)
        with pytest.raises(ConfigurationError):
            TesseraExtension(app)
    # Options under the Verifier's names reach it: another issuer refuses.
    app, _ = make_app(jwks_url=tessera.jwks_url, issuer="https://elsewhere.example")
    refused(app.test_client().get("/orders", headers=bearer(tessera.user().access)), "Invalid token")


def test_another_header_type_is_read(tessera: Tessera) -> None:
    app, _ = make_app(jwks_url=tessera.jwks_url, header_type="JWT")
    user = tessera.user()
    r = app.test_client().get("/orders", headers={"Authorization": f"JWT {user.access}"})
    assert (r.status_code, r.get_json()["user_id"]) == (200, user.id)
    r = app.test_client().get("/orders", headers=bearer(user.access))
    assert r.status_code == 401
    assert r.get_json() == {
        "msg": "Missing 'JWT' type in 'Authorization' header. Expected 'Authorization: JWT <JWT>'"
    }


def test_get_claims_outside_a_protected_view_is_an_error(app: Flask) -> None:
    with app.test_request_context("/"):
        with pytest.raises(RuntimeError):
            get_claims()


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
