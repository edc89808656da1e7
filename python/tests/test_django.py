"""tessera_verify.django in a real Django + DRF app (DRF's APIClient)
against a real Tessera: the user and token of a good request, DRF's 401
without credentials, each refusal with Tessera's body and the invalid_token
challenge, the 503 of an unreachable feed, revocations within a second with
no request to Tessera per verification, the model-backed variant, and the
settings."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator

import django
import pytest
from django.conf import settings

# Configured here, once per pytest process, only if nothing else did: the
# other frameworks' tests never import Django. Each test sets TESSERA with
# override_settings (which is what the setting_changed receiver is for).
if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tessera-verify-tests",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "tessera_verify.django.TesseraAuthentication"
            ],
            "DEFAULT_PERMISSION_CLASSES": [
                "rest_framework.permissions.IsAuthenticated"
            ],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
        },
    )
    django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from conftest import Tessera, wait_until  # noqa: E402
from tessera_verify import (  # noqa: E402
    CHALLENGE,
    CHALLENGE_INVALID,
    bearer_token,
)
import tessera_verify.django as tessera_django  # noqa: E402
from tessera_verify.django import (  # noqa: E402
    TesseraAuthentication,
    TesseraModelAuthentication,
    TesseraUser,
    get_verifier,
)

NOT_AUTHENTICATED = {"detail": "Authentication credentials were not provided."}
UNAVAILABLE = {"detail": "Service temporarily unavailable, try again later."}


def refused(reason: str) -> Dict[str, str]:
    return {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "reason": reason,
    }


def describe(request: Request) -> Dict[str, Any]:
    user = request.user
    return {
        "class": type(user).__name__,
        "id": user.id,
        "pk": user.pk,
        "username": user.username,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "is_active": user.is_active,
        "is_authenticated": user.is_authenticated,
        "is_anonymous": user.is_anonymous,
        "str": str(user),
        "auth": request.auth,
        # What simplejwt's code reads off request.auth.
        "auth.token": request.auth.token,
        "auth.payload.jti": request.auth.payload["jti"],
    }


class Me(APIView):
    authentication_classes = [TesseraAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response({**describe(request), "claims": request.user.claims})


class Default(APIView):
    """Authentication and permission from REST_FRAMEWORK's defaults."""

    def get(self, request: Request) -> Response:
        return Response(describe(request))


class ModelMe(APIView):
    authentication_classes = [TesseraModelAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(describe(request))


class Forward(APIView):
    """The first tutorial's frontend: the header it sends to its backend."""

    authentication_classes = [TesseraAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        # And as docs/MIGRATING.md tells simplejwt's users to.
        raw = request.auth.token
        raw = raw.decode() if isinstance(raw, bytes) else raw
        return Response(
            {
                "authorization": f"Bearer {request.auth}",
                "migrating": f"Bearer {raw}",
                "str": str(request.auth),
                "types": [type(str(request.auth)).__name__, type(raw).__name__],
                "repr": repr(request.auth),
            }
        )


urlpatterns = [
    path("me", Me.as_view()),
    path("default", Default.as_view()),
    path("model-me", ModelMe.as_view()),
    path("forward", Forward.as_view()),
]


@contextmanager
def app(**tessera: Any) -> Iterator[APIClient]:
    """A client of this module's app with ``TESSERA = tessera``."""
    with override_settings(ROOT_URLCONF=__name__, TESSERA=tessera):
        yield APIClient()


def get(client: APIClient, url: str, authorization: Any = None) -> Any:
    if authorization is None:
        return client.get(url)
    return client.get(url, HTTP_AUTHORIZATION=authorization)


def assert_refused(response: Any, reason: str) -> None:
    assert response.status_code == 401, response.content
    assert response.json() == refused(reason)
    assert response["WWW-Authenticate"] == CHALLENGE_INVALID
    assert response["Content-Type"] == "application/json"


def assert_not_authenticated(response: Any, challenge: str = CHALLENGE) -> None:
    assert response.status_code == 401, response.content
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == challenge


def status_of(client: APIClient, token: str) -> Any:
    response = get(client, "/me", f"Bearer {token}")
    return response.status_code, response.json().get("reason")


def test_a_good_token_gives_a_stateless_user_and_the_token_with_no_query(
    tessera: Tessera,
) -> None:
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url) as client:
        with CaptureQueriesContext(connection) as queries:
            response = get(client, "/me", f"Bearer {user.access}")
        assert response.status_code == 200, response.content
        assert len(queries.captured_queries) == 0
        body = response.json()
        claims = body.pop("claims")
        assert body == {
            "class": "TesseraUser",
            "id": user.id,
            "pk": user.id,
            "username": user.username,
            "is_staff": False,
            "is_superuser": False,
            "is_active": True,
            "is_authenticated": True,
            "is_anonymous": False,
            "str": f"TesseraUser {user.id}",
            "auth": user.access,
            "auth.token": user.access,
            "auth.payload.jti": claims["jti"],
        }
        assert claims["user_id"] == user.id
        assert claims["username"] == user.username
        assert claims["token_type"] == "access"
        assert claims == get_verifier().verify(user.access)


def test_the_class_named_in_default_authentication_classes_is_used(
    tessera: Tessera,
) -> None:
    if Default.authentication_classes != [TesseraAuthentication]:
        pytest.skip("Django was configured before this module (not by it)")
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url) as client:
        response = get(client, "/default", f"Bearer {user.access}")
        assert response.status_code == 200, response.content
        assert response.json()["class"] == "TesseraUser"
        assert response.json()["auth"] == user.access
        assert_not_authenticated(get(client, "/default"))
        assert_refused(get(client, "/default", f"Bearer {user.refresh}"), "wrong_type")


def test_no_credentials_is_drfs_401_with_the_plain_challenge(tessera: Tessera) -> None:
    with app(JWKS_URL=tessera.jwks_url) as client:
        assert_not_authenticated(get(client, "/me"))
        assert_not_authenticated(get(client, "/me", ""))
        # Not bearer credentials: another scheme, the scheme's wrong case,
        # the scheme alone.
        for header in ("Basic dXNlcjpwYXNz", "Token abc.def.ghi", "bearer abc.def.ghi", "Bearer"):
            assert_not_authenticated(get(client, "/me", header))


def test_each_refusal_is_a_401_with_tesseras_body_and_invalid_token(
    tessera: Tessera,
) -> None:
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url) as client:
        assert_refused(get(client, "/me", f"Bearer {user.access[:-4]}AAAA"), "invalid")
        assert_refused(get(client, "/me", "Bearer not.a.token"), "invalid")
        assert_refused(get(client, "/me", f"Bearer {user.refresh}"), "wrong_type")
        # The next request of the same client is answered on its own.
        assert get(client, "/me", f"Bearer {user.access}").status_code == 200
        assert_not_authenticated(get(client, "/me"))


def test_bad_headers_are_refused_as_invalid(tessera: Tessera) -> None:
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url) as client:
        assert_refused(get(client, "/me", "Bearer " + "a" * 1_000_000), "invalid")
        assert_refused(get(client, "/me", "Bearer " + user.access + "x" * 1_000_000), "invalid")
        # Non-ASCII: as the test client passes it, and as a WSGI server
        # does (the header's UTF-8 bytes read as latin-1).
        assert_refused(get(client, "/me", "Bearer caf\u00e9"), "invalid")
        assert_refused(
            get(client, "/me", ("Bearer " + user.access + "\u00e9").encode().decode("latin-1")),
            "invalid",
        )
        assert_refused(get(client, "/me", f"Bearer {user.access} extra"), "invalid")
        assert get(client, "/me", f"Bearer {user.access}").status_code == 200


def test_an_expired_token_is_refused_as_expired() -> None:
    short = Tessera(settings='access_token_lifetime = "1s"')
    try:
        user = short.user()
        with app(JWKS_URL=short.jwks_url) as client:
            # Expiry is checked to the second: at most about 2 s after issue.
            wait_until(lambda: status_of(client, user.access) == (401, "expired"), within=5)
            assert_refused(get(client, "/me", f"Bearer {user.access}"), "expired")
    finally:
        short.close()


def test_a_logged_out_token_is_refused_within_a_second(tessera: Tessera) -> None:
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url, REVOCATIONS=tessera.client()) as client:
        assert get(client, "/me", f"Bearer {user.access}").status_code == 200
        wait_until(lambda: get_verifier().status()["connected"], within=5)
        user.logout()
        wait_until(lambda: status_of(client, user.access) == (401, "revoked"), within=1.0)
        assert_refused(get(client, "/me", f"Bearer {user.access}"), "revoked")


def test_a_deactivated_users_token_is_refused_within_a_second(tessera: Tessera) -> None:
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url, REVOCATIONS=tessera.client()) as client:
        assert get(client, "/me", f"Bearer {user.access}").status_code == 200
        wait_until(lambda: get_verifier().status()["connected"], within=5)
        tessera.cli("users", "deactivate", user.username)
        wait_until(lambda: status_of(client, user.access) == (401, "revoked"), within=1.0)
        assert_refused(get(client, "/me", f"Bearer {user.access}"), "revoked")


def test_no_request_to_tessera_per_verification(fresh_tessera: Tessera) -> None:
    user = fresh_tessera.user()
    other = fresh_tessera.user()
    with app(JWKS_URL=fresh_tessera.jwks_url, REVOCATIONS=fresh_tessera.client()) as client:
        for _ in range(100):
            assert get(client, "/me", f"Bearer {user.access}").status_code == 200
        wait_until(lambda: get_verifier().status()["connected"], within=5)
        for _ in range(100):
            assert get(client, "/me", f"Bearer {user.access}").status_code == 200
            assert get(client, "/me", f"Bearer {other.access}").status_code == 200
        other.logout()
        wait_until(lambda: status_of(client, other.access) == (401, "revoked"), within=1.0)
        for _ in range(50):
            assert_refused(get(client, "/me", f"Bearer {other.access}"), "revoked")
        # The stream's line reaches the log once its answer has begun.
        wait_until(lambda: fresh_tessera.requests_to("/api/revocations/stream") >= 1, within=5)
        log = fresh_tessera.log()
        assert fresh_tessera.requests_to("/oauth/introspect", log) == 0
        assert fresh_tessera.requests_to("/api/auth/me", log) == 0
        # Only the follower's own requests: its token grant, the keys, the
        # snapshot and the stream (a second of each is a reconnection).
        for p in ("/.well-known/jwks.json", "/api/revocations", "/api/revocations/stream", "/oauth/token"):
            assert 1 <= fresh_tessera.requests_to(p, log) <= 2, (p, log)


def test_an_unreachable_feed_is_a_503_with_retry_after(tessera: Tessera) -> None:
    feed = tessera.client()
    feed["client_secret"] = "wrong"
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url, REVOCATIONS={**feed, "max_staleness": 1}) as client:
        start = time.monotonic()
        # Accepted on the keys alone until max_staleness has passed since the
        # follower started, then unavailable.
        first = get(client, "/me", f"Bearer {user.access}")
        assert first.status_code in (200, 503)
        wait_until(lambda: get(client, "/me", f"Bearer {user.access}").status_code == 503, within=5)
        response = get(client, "/me", f"Bearer {user.access}")
        assert response.status_code == 503
        assert response.json() == UNAVAILABLE
        assert response["Retry-After"].isdigit()
        assert 1 <= int(response["Retry-After"]) <= 60
        assert not response.has_header("WWW-Authenticate")
        assert time.monotonic() - start < 6
        # A refusal on the keys does not wait for the feed.
        assert_refused(get(client, "/me", f"Bearer {user.refresh}"), "wrong_type")


def test_the_frontend_forwards_the_token_unchanged(tessera: Tessera) -> None:
    user = tessera.user()
    with app(JWKS_URL=tessera.jwks_url) as client:
        response = get(client, "/forward", f"Bearer {user.access}")
        assert response.status_code == 200, response.content
        body = response.json()
        forwarded = body["authorization"]
        assert forwarded == f"Bearer {user.access}"
        assert body["migrating"] == forwarded
        assert body["str"] == user.access
        assert body["types"] == ["str", "str"]
        # The token stays out of reprs (logs, error reports).
        assert user.access not in body["repr"]
        assert body["repr"] == f"<TesseraToken sub={str(user.id)!r}>"
        # The backend (same Verifier) reads and accepts what it was sent.
        token = bearer_token(forwarded)
        assert token is not None
        assert get_verifier().verify(token)["user_id"] == user.id
        assert get(client, "/me", forwarded).json()["id"] == user.id


def test_other_header_schemes_and_username_claim(tessera: Tessera) -> None:
    user = tessera.user()
    with app(
        JWKS_URL=tessera.jwks_url, AUTH_HEADER_TYPES=["JWT"], USERNAME_CLAIM="sub"
    ) as client:
        response = get(client, "/me", f"JWT {user.access}")
        assert response.status_code == 200, response.content
        # sub is the user id as a string (Tessera's default subject).
        assert response.json()["username"] == str(user.id)
        assert_not_authenticated(get(client, "/me", f"Bearer {user.access}"), 'JWT realm="api"')
        refusal = get(client, "/me", f"JWT {user.refresh}")
        assert refusal.status_code == 401
        assert refusal.json() == refused("wrong_type")
        assert refusal["WWW-Authenticate"] == 'JWT realm="api", error="invalid_token"'


def test_claim_names_are_read_under_tesseras_names() -> None:
    server = Tessera(
        'extra_claims = ["email", "is_staff", "is_superuser"]\n'
        'claim_names = { username = "user_name", is_staff = "is_admin", is_superuser = "is_root" }'
    )
    try:
        user, admin = server.user(), server.admin()
        names = {"username": "user_name", "is_staff": "is_admin", "is_superuser": "is_root"}
        with app(JWKS_URL=server.jwks_url, CLAIM_NAMES=names) as client:
            body = get(client, "/me", f"Bearer {user.access}").json()
            assert (body["username"], body["is_staff"], body["is_superuser"]) == (
                user.username,
                False,
                False,
            )
            body = get(client, "/me", f"Bearer {admin.access}").json()
            assert (body["username"], body["is_staff"], body["is_superuser"]) == (
                admin.username,
                True,
                True,
            )
            assert body["claims"]["is_admin"] is True and "is_staff" not in body["claims"]
        with app(JWKS_URL=server.jwks_url, CLAIM_NAMES={"username": "sub"}):
            with pytest.raises(ImproperlyConfigured, match="cannot be renamed `sub`"):
                get_verifier()
        with app(JWKS_URL=server.jwks_url, CLAIM_NAMES="user_name"):
            with pytest.raises(ImproperlyConfigured, match="CLAIM_NAMES"):
                get_verifier()
    finally:
        server.close()


@pytest.fixture(scope="module")
def database() -> Iterator[None]:
    call_command("migrate", verbosity=0, run_syncdb=True)
    yield


def test_the_model_variant_loads_the_projects_user(tessera: Tessera, database: None) -> None:
    model = get_user_model()
    found, missing, inactive = tessera.user(), tessera.user(), tessera.user()
    model.objects.create(id=found.id, username=f"local-{found.username}")
    model.objects.create(id=inactive.id, username=inactive.username, is_active=False)
    try:
        with app(JWKS_URL=tessera.jwks_url) as client:
            with CaptureQueriesContext(connection) as queries:
                response = get(client, "/model-me", f"Bearer {found.access}")
            assert response.status_code == 200, response.content
            assert len(queries.captured_queries) == 1
            body = response.json()
            assert body["class"] == model.__name__
            assert body["id"] == found.id
            # The row's username, not the token's.
            assert body["username"] == f"local-{found.username}"
            assert body["auth"] == found.access
            assert body["auth.payload.jti"] == get_verifier().verify(found.access)["jti"]

            response = get(client, "/model-me", f"Bearer {missing.access}")
            assert response.status_code == 401
            assert response.json() == {"detail": "User not found", "code": "user_not_found"}
            assert response["WWW-Authenticate"] == CHALLENGE_INVALID

            response = get(client, "/model-me", f"Bearer {inactive.access}")
            assert response.status_code == 401
            assert response.json() == {"detail": "User is inactive", "code": "user_inactive"}
            assert response["WWW-Authenticate"] == CHALLENGE_INVALID

            # Refusals and no credentials as TesseraAuthentication's, with no query.
            with CaptureQueriesContext(connection) as queries:
                assert_refused(get(client, "/model-me", f"Bearer {found.refresh}"), "wrong_type")
                assert_not_authenticated(get(client, "/model-me"))
            assert len(queries.captured_queries) == 0
    finally:
        model.objects.filter(id__in=[found.id, inactive.id]).delete()


def test_settings_that_cannot_make_a_verifier_are_improperly_configured(
    tessera: Tessera,
) -> None:
    with app(JWKS_URL=tessera.jwks_url, JWKS_URI="http://x") as client:
        with pytest.raises(ImproperlyConfigured, match="JWKS_URI"):
            get_verifier()
        # A request raises it too (a 500 outside tests), not a 401.
        with pytest.raises(ImproperlyConfigured, match="JWKS_URI"):
            get(client, "/me", "Bearer a.b.c")
    with app(jwks_url=tessera.jwks_url):
        with pytest.raises(ImproperlyConfigured, match="jwks_url"):
            get_verifier()
    for options in (
        {},
        {"SECRET": "short"},
        {"JWKS_URL": tessera.jwks_url, "SECRET": "s" * 32},
        {"JWKS_URL": tessera.jwks_url, "LEEWAY": "soon"},
        {"JWKS_URL": tessera.jwks_url, "REVOCATIONS": {"url": "ftp://a", "client_id": "x", "client_secret": "y"}},
        {"JWKS_URL": tessera.jwks_url, "AUTH_HEADER_TYPES": []},
        {"JWKS_URL": tessera.jwks_url, "USERNAME_CLAIM": 3},
    ):
        with app(**options):
            with pytest.raises(ImproperlyConfigured):
                get_verifier()
    with override_settings(TESSERA="http://x"):
        with pytest.raises(ImproperlyConfigured, match="dict"):
            get_verifier()
    with override_settings():
        del settings.TESSERA
        with pytest.raises(ImproperlyConfigured, match="TESSERA setting"):
            get_verifier()


def test_one_verifier_per_settings_value(tessera: Tessera) -> None:
    with app(JWKS_URL=tessera.jwks_url):
        first = get_verifier()
        assert get_verifier() is first
        with app(JWKS_URL=tessera.jwks_url, LEEWAY=5):
            assert get_verifier() is not first
            second = get_verifier()
            assert get_verifier() is second
        assert get_verifier() is not second


def test_threads_share_one_verifier_and_verify_concurrently(
    tessera: Tessera, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [tessera.user() for _ in range(4)]
    start = threading.Barrier(len(users))
    build = tessera_django._build

    def slow_build() -> Any:
        # Holds the first builder long enough for the others to arrive.
        time.sleep(0.2)
        return build()

    monkeypatch.setattr(tessera_django, "_build", slow_build)
    with app(JWKS_URL=tessera.jwks_url, REVOCATIONS=tessera.client()):

        def work(i: int) -> Any:
            client = APIClient()
            start.wait(timeout=10)
            verifier = get_verifier()
            answers = [
                get(client, "/me", f"Bearer {users[i].access}").json()["id"] for _ in range(50)
            ]
            return verifier, answers

        with ThreadPoolExecutor(len(users)) as pool:
            results = list(pool.map(work, range(len(users)), timeout=60))
    # The first use, made by four threads at once, built one Verifier.
    assert len({id(verifier) for verifier, _ in results}) == 1
    for (_, answers), user in zip(results, users):
        assert answers == [user.id] * 50


def test_the_stateless_user_behaves_as_simplejwts_token_user() -> None:
    claims = {"user_id": 7, "username": "ada", "is_staff": True, "email": "a@x"}
    user = TesseraUser(claims)
    assert (user.id, user.pk, user.username, user.get_username()) == (7, 7, "ada", "ada")
    assert user.is_staff is True and user.is_superuser is False
    assert user.claims is claims and user.token is claims
    assert user.email == "a@x" and user.missing is None
    assert str(user) == "TesseraUser 7"
    assert user == TesseraUser({"user_id": 7}) and user != TesseraUser({"user_id": 8})
    assert hash(user) == hash(TesseraUser({"user_id": 7}))
    assert user != 7
    assert not user.has_perm("auth.add_user")
    assert not user.has_perms(["auth.add_user"])
    assert not user.has_module_perms("auth")
    assert user.get_all_permissions() == set()
    with CaptureQueriesContext(connection) as queries:
        assert list(user.groups.all()) == [] and list(user.user_permissions.all()) == []
    assert len(queries.captured_queries) == 0
    for method in (user.save, user.delete):
        with pytest.raises(NotImplementedError):
            method()
    superuser = TesseraUser({"user_id": 1, "is_superuser": True})
    assert superuser.has_perm("auth.add_user") and superuser.has_module_perms("auth")
    assert superuser.username == ""
    # Only the boolean true makes staff.
    assert TesseraUser({"user_id": 1, "is_staff": "yes"}).is_staff is False
    # Roles from the roles claim (Tessera's extra_claims = ["roles"]), or the
    # name CLAIM_NAMES gives it; none when absent or not a list.
    assert user.roles == []
    assert TesseraUser({"user_id": 1, "roles": ["b", "a"]}).roles == ["b", "a"]
    assert TesseraUser({"user_id": 1, "groups": ["x", 3]}, roles_claim="groups").roles == ["x"]
    assert TesseraUser({"user_id": 1, "roles": "admins"}).roles == []
    with pytest.raises(AttributeError):
        user._private


def test_the_package_does_not_import_django() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, tessera_verify; print('django' in sys.modules)"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
