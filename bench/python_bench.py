"""Driver of bench/python.sh: tessera_verify against PyJWT and simplejwt.

Reads its Tesseras from the environment (bench/python.sh sets it; secrets
never on the command line):
  BENCH_HS256_ORIGIN, BENCH_HS256_KEY (the signing_key),
  BENCH_HS256_CLIENT_ID / _SECRET (a client with the revocations scope),
  BENCH_HS256_DJANGO_CLIENT_ID / _SECRET (another, for the DRF service),
  BENCH_ES256_ORIGIN, BENCH_ES256_KEY_FILE (its signing_key, a PEM),
  BENCH_ES256_CLIENT_ID / _SECRET,
  BENCH_WORKDIR (a directory for the Django database).

1. verify calls/s, HS256 and ES256: ``Verifier.verify`` (following the
   feed of that Tessera, connected: the revocation check is in every call)
   against PyJWT's ``jwt.decode`` of the same token with the same checks
   (the algorithm allow-listed, exp/iat/jti/token_type/user_id required,
   token_type "access", the key loaded once); single thread, ROUNDS rounds
   alternating which goes first, counts and times added up. Twice: with
   one token verified over and over (SECONDS or MAX_CALLS calls a run: a
   client presenting its token on every request, which tessera_verify's
   cache of verified tokens answers without checking the signature again,
   the expiry, type and revocation checks made each time), and with a new
   token each call (FRESH_PER_ROUND a run, each verified once by each side:
   the signature checked every time). The new tokens are Tessera's token
   with another jti, signed with Tessera's own key (BENCH_HS256_KEY, the
   PEM at BENCH_ES256_KEY_FILE). Target: ours >= 2x PyJWT, both ways.
2. DRF GET req/s, HS256: the same APIView (IsAuthenticated, answers
   ``{"user_id": ...}``) authenticated by ``tessera_verify.django.
   TesseraAuthentication`` (stateless user, feed followed) and by simplejwt's
   ``JWTAuthentication`` (loads the user row from SQLite, connection kept:
   CONN_MAX_AGE 600, simplejwt's best case); measured in process by calling
   Django's WSGI handler in a loop with a prebuilt environ (no HTTP, no
   test Client), no middleware, JSON renderer only; same rounds. Target:
   ours >= 1.5x simplejwt. Skipped, saying so, without tessera_verify.django.

Usage: python_bench.py [SECONDS] [ROUNDS] (defaults 1, 5). Prints a table:
metric, value, target, PASS/FAIL (targets reported, not enforced). Exits 0
once it has measured, 1 when it cannot (a Tessera unreachable, a token the
two sides do not agree on, a follower never connected).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import secrets
import sys
import time
import urllib.request
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

PASSWORD = "vivid-otter-canyon-1987!"
MAX_CALLS = 5_000_000
# Tokens verified once each, per side and round (the cold measurement).
FRESH_PER_ROUND = 4000
BATCH = 200
START = time.monotonic()


class SetupError(Exception):
    """The bench cannot run (exit 1)."""


def say(what: str) -> None:
    """Progress, on stderr, with the time since the start."""
    print(f"[{time.monotonic() - START:6.1f}s] {what}", file=sys.stderr, flush=True)


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SetupError(f"{name} is not set (run bench/python.sh)")
    return value


def post_json(url: str, body: Dict[str, Any]) -> Tuple[int, Dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def get_json(url: str, token: Optional[str] = None) -> Dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def login(origin: str, username: str) -> Tuple[str, int]:
    """Signs ``username`` up and logs in: an access token and the user id."""
    status, body = post_json(origin + "/api/auth/signup", {"username": username, "password": PASSWORD})
    if status != 201:
        raise SetupError(f"signup at {origin} answered {status}: {body}")
    status, body = post_json(origin + "/api/token/", {"username": username, "password": PASSWORD})
    if status != 200:
        raise SetupError(f"login at {origin} answered {status}")
    access = str(body["access"])
    return access, int(get_json(origin + "/api/auth/me", access)["id"])


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return ".".join((head, payload, ("A" if signature[0] != "A" else "B") + signature[1:]))


# --- the table ---------------------------------------------------------------


class Table:
    """Rows of metric, value, target, verdict (as feed_bench prints them)."""

    def __init__(self) -> None:
        self.rows: List[Tuple[str, str, str, str]] = []

    def info(self, metric: str, value: str) -> None:
        self.rows.append((metric, value, "-", ""))

    def target(self, metric: str, value: str, target: str, met: bool) -> None:
        self.rows.append((metric, value, target, "PASS" if met else "FAIL"))

    def render(self) -> str:
        rows = [("metric", "value", "target", "result"), *self.rows]
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "".join(
            f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() + "\n"
            for r in rows
        )


def per_second(rate: float) -> str:
    return f"{rate:,.0f}/s"


# --- timing ------------------------------------------------------------------


def timed(call: Callable[[], Any], seconds: float) -> Tuple[int, float]:
    """Calls ``call`` in batches for ``seconds`` or MAX_CALLS calls: (calls,
    elapsed seconds)."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while calls < MAX_CALLS:
        for _ in range(BATCH):
            call()
        calls += BATCH
        if time.perf_counter() >= deadline:
            break
    return calls, time.perf_counter() - start


def alternating(sides: Dict[str, Callable[[], Any]], seconds: float, rounds: int) -> Dict[str, float]:
    """Each side's rate over ``rounds`` rounds, the order swapped each
    round (the machine's speed drifts; a first-run advantage cancels)."""
    names = list(sides)
    totals = {name: [0, 0.0] for name in names}
    for name in names:  # warm-up, not counted
        timed(sides[name], min(0.3, seconds))
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            calls, elapsed = timed(sides[name], seconds)
            totals[name][0] += calls
            totals[name][1] += elapsed
    return {name: calls / elapsed for name, (calls, elapsed) in totals.items()}


def alternating_tokens(
    sides: Dict[str, Callable[[str], Any]], tokens: List[str], rounds: int
) -> Dict[str, float]:
    """Each side's rate over ``rounds`` rounds, each round a slice of
    ``tokens`` that both sides verify once each (so a cache of verified
    tokens never hits), the order swapped each round."""
    names = list(sides)
    totals = {name: [0, 0.0] for name in names}
    per_round = len(tokens) // rounds
    for round_ in range(rounds):
        batch = tokens[round_ * per_round : (round_ + 1) * per_round]
        for name in names if round_ % 2 == 0 else reversed(names):
            call = sides[name]
            start = time.perf_counter()
            for token in batch:
                call(token)
            totals[name][0] += len(batch)
            totals[name][1] += time.perf_counter() - start
    return {name: calls / elapsed for name, (calls, elapsed) in totals.items()}


def mint(model: str, key: Any, algorithm: str, count: int) -> List[str]:
    """``count`` tokens with ``model``'s header and claims, each with a jti
    of its own, signed with Tessera's own key: what Tessera would issue to
    ``count`` logins of that user (a jti it never saw is not revoked)."""
    import jwt

    kid = jwt.get_unverified_header(model)["kid"]
    claims = jwt.decode(model, options={"verify_signature": False})
    tokens = []
    for _ in range(count):
        claims["jti"] = secrets.token_hex(16)
        tokens.append(jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid}))
    return tokens


def wait_connected(status: Callable[[], Optional[Mapping[str, Any]]], what: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        current = status()
        if current and current["connected"] and current["current"]:
            return
        time.sleep(0.02)
    raise SetupError(f"{what}: the feed's follower did not connect within 10 s: {status()}")


# --- 1. verify calls/s -------------------------------------------------------


def bench_verify(table: Table, algorithm: str, seconds: float, rounds: int) -> None:
    import jwt

    from tessera_verify import TokenRefused, Verifier

    prefix = f"BENCH_{algorithm}_"
    origin = env(prefix + "ORIGIN")
    revocations = {
        "url": origin,
        "client_id": env(prefix + "CLIENT_ID"),
        "client_secret": env(prefix + "CLIENT_SECRET"),
    }
    token, user_id = login(origin, f"bench-verify-{algorithm.lower()}")
    if algorithm == "HS256":
        key: Any = env(prefix + "KEY")
        signing_key: Any = key
        ours = Verifier(secret=key, revocations=revocations)
    else:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        jwks = get_json(origin + "/.well-known/jwks.json")
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(jwt.PyJWK(k).key for k in jwks["keys"] if k.get("kid") == kid)
        with open(env(prefix + "KEY_FILE"), "rb") as pem:
            signing_key = load_pem_private_key(pem.read(), password=None)
        ours = Verifier(jwks_url=origin + "/.well-known/jwks.json", revocations=revocations)
    required = ["exp", "iat", "jti", "token_type", "user_id"]

    def pyjwt_decode(value: str = token) -> Dict[str, Any]:
        claims: Dict[str, Any] = jwt.decode(
            value, key, algorithms=[algorithm], options={"require": required}
        )
        if claims["token_type"] != "access":
            raise jwt.InvalidTokenError("not an access token")
        return claims

    # Both take the token and refuse a forged one, before anything is timed.
    ours_claims = ours.verify(token)
    if ours_claims["user_id"] != user_id or pyjwt_decode()["user_id"] != user_id:
        raise SetupError(f"{algorithm}: the two sides do not read the same user")
    try:
        ours.verify(tampered(token))
        raise SetupError(f"{algorithm}: tessera_verify took a forged token")
    except TokenRefused:
        pass
    try:
        pyjwt_decode(tampered(token))
        raise SetupError(f"{algorithm}: PyJWT took a forged token")
    except jwt.InvalidSignatureError:
        pass
    fresh = mint(token, signing_key, algorithm, FRESH_PER_ROUND * rounds + 1)
    if ours.verify(fresh[-1])["user_id"] != user_id or pyjwt_decode(fresh[-1])["user_id"] != user_id:
        raise SetupError(f"{algorithm}: a token minted as Tessera mints them is not taken")
    wait_connected(ours.status, f"{algorithm} verifier")

    say(f"{algorithm}: verify, one token, {rounds} rounds of {seconds:g} s a side")
    rates = alternating(
        {"ours": lambda: ours.verify(token), "pyjwt": pyjwt_decode}, seconds, rounds
    )
    say(f"{algorithm}: verify, a new token each call, {rounds} rounds of {FRESH_PER_ROUND} a side")
    cold = alternating_tokens(
        {"ours": ours.verify, "pyjwt": pyjwt_decode}, fresh[:-1], rounds
    )
    status = ours.status()
    assert status is not None
    if not status["connected"]:
        raise SetupError(f"{algorithm}: the follower lost the feed during the run: {status}")
    ratio = rates["ours"] / rates["pyjwt"]
    table.info(f"{algorithm} one token: Verifier.verify (feed followed)", per_second(rates["ours"]))
    table.info(f"{algorithm} one token: PyJWT jwt.decode (same checks)", per_second(rates["pyjwt"]))
    table.target(f"{algorithm} one token: ours / PyJWT", f"{ratio:.2f}x", ">= 2.00x", ratio >= 2.0)
    ratio = cold["ours"] / cold["pyjwt"]
    table.info(f"{algorithm} new token each call: Verifier.verify", per_second(cold["ours"]))
    table.info(f"{algorithm} new token each call: PyJWT jwt.decode", per_second(cold["pyjwt"]))
    table.target(f"{algorithm} new token each call: ours / PyJWT", f"{ratio:.2f}x", ">= 2.00x", ratio >= 2.0)


# --- 2. DRF req/s ------------------------------------------------------------


def bench_drf(table: Table, seconds: float, rounds: int) -> None:
    metric = "DRF GET, TesseraAuthentication / simplejwt"
    if importlib.util.find_spec("tessera_verify.django") is None:
        say("DRF: skipped: tessera_verify.django is not in this build of the package")
        table.info(metric, "skipped: no tessera_verify.django")
        return
    origin = env("BENCH_HS256_ORIGIN")
    key = env("BENCH_HS256_KEY")
    token, user_id = login(origin, "bench-drf")

    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-" + "x" * 40,
        ALLOWED_HOSTS=["127.0.0.1"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
        ],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(env("BENCH_WORKDIR"), "django.sqlite3"),
                "CONN_MAX_AGE": 600,
            }
        },
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["tessera_verify.django.TesseraAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
        TESSERA={
            "SECRET": key,
            "REVOCATIONS": {
                "url": origin,
                "client_id": env("BENCH_HS256_DJANGO_CLIENT_ID"),
                "client_secret": env("BENCH_HS256_DJANGO_CLIENT_SECRET"),
            },
        },
        SIMPLE_JWT={
            "ALGORITHM": "HS256",
            "SIGNING_KEY": key,
            "USER_ID_FIELD": "id",
            "USER_ID_CLAIM": "user_id",
            "TOKEN_TYPE_CLAIM": "token_type",
            "JTI_CLAIM": "jti",
            "AUTH_HEADER_TYPES": ("Bearer",),
            "LEEWAY": 0,
        },
    )
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.urls import path
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView
    from rest_framework_simplejwt.authentication import JWTAuthentication

    call_command("migrate", verbosity=0, interactive=False)
    # simplejwt loads the user by the token's user_id: the same id here.
    get_user_model().objects.create(id=user_id, username="bench-drf")

    class Tessera(APIView):  # type: ignore[misc]
        def get(self, request: Request) -> Response:
            return Response({"user_id": request.user.id})

    class SimpleJWT(Tessera):
        authentication_classes = [JWTAuthentication]

    module = sys.modules[__name__]
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("tessera", Tessera.as_view()),
        path("simplejwt", SimpleJWT.as_view()),
    ]
    handler = WSGIHandler()
    base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }

    def call(route: str, bearer: str) -> Tuple[str, bytes]:
        environ = dict(base, PATH_INFO=route, HTTP_AUTHORIZATION="Bearer " + bearer)
        environ["wsgi.input"] = io.BytesIO(b"")
        answered: List[str] = []
        response = handler(environ, lambda status, headers, *_: answered.append(status))
        try:
            return answered[0], b"".join(response)
        finally:
            response.close()  # request_finished, as a server sends it

    # Both accept Tessera's token as the same user, and refuse a forged one.
    expected = ("200 OK", json.dumps({"user_id": user_id}, separators=(",", ":")).encode())
    for route in ("/tessera", "/simplejwt"):
        got = call(route, token)
        if got != expected:
            raise SetupError(f"DRF {route} did not take Tessera's token: {got!r:.300}")
        status, _ = call(route, tampered(token))
        if not status.startswith("401"):
            raise SetupError(f"DRF {route} answered {status} to a forged token")
    from tessera_verify.django import get_verifier

    wait_connected(get_verifier().status, "DRF's verifier")

    def ours() -> None:
        if call("/tessera", token)[0] != "200 OK":
            raise RuntimeError("DRF /tessera refused the token during the run")

    def simplejwt() -> None:
        if call("/simplejwt", token)[0] != "200 OK":
            raise RuntimeError("DRF /simplejwt refused the token during the run")

    say(f"DRF: WSGI calls, {rounds} rounds of {seconds:g} s a side")
    rates = alternating({"ours": ours, "simplejwt": simplejwt}, seconds, rounds)
    ratio = rates["ours"] / rates["simplejwt"]
    table.info("DRF GET, TesseraAuthentication (feed followed)", per_second(rates["ours"]))
    table.info("DRF GET, simplejwt JWTAuthentication (DB user)", per_second(rates["simplejwt"]))
    table.target(metric, f"{ratio:.2f}x", ">= 1.50x", ratio >= 1.5)


def main(argv: List[str]) -> int:
    try:
        seconds = float(argv[1]) if len(argv) > 1 else 1.0
        rounds = int(argv[2]) if len(argv) > 2 else 5
        if not (0 < seconds <= 30 and 1 <= rounds <= 20):
            raise ValueError
    except ValueError:
        print("usage: python_bench.py [SECONDS (0-30)] [ROUNDS (1-20)]", file=sys.stderr)
        return 2
    import tessera_verify

    say(f"tessera_verify from {os.path.dirname(tessera_verify.__file__)}")
    table = Table()
    try:
        for algorithm in ("HS256", "ES256"):
            bench_verify(table, algorithm, seconds, rounds)
        bench_drf(table, seconds, rounds)
    except SetupError as error:
        print(f"python_bench: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
