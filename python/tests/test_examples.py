"""examples/python/ run as a user runs it: a real Tessera, the backend and
the frontend each a `python -m django runserver` process with a service
client of its own. A user's token goes through the frontend to the backend;
no token is DRF's 401; after a logout in Tessera both services refuse the
token within a second, each on its own, with no request to Tessera per
verified token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
import requests

from conftest import Tessera, wait_until
from tessera_verify import CHALLENGE, CHALLENGE_INVALID, refusal_body

PYTHON_DIR = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = PYTHON_DIR.parent / "examples" / "python"


def free_port() -> int:
    # Bound and released: runserver binds it again a moment later (another
    # process could take it between the two; on 127.0.0.1 it is unlikely).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """One example project under `python -m django runserver`."""

    def __init__(self, name: str, tessera: Tessera, **env: str) -> None:
        self.name = name
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.log_path = tessera.dir / f"{name}.log"
        client = tessera.client(name)
        environment = {
            **os.environ,
            # This checkout's package and the examples, before the venv's.
            "PYTHONPATH": os.pathsep.join([str(PYTHON_DIR), str(EXAMPLES_DIR)]),
            "DJANGO_SETTINGS_MODULE": f"{name}.settings",
            "TESSERA_URL": tessera.origin,
            "TESSERA_CLIENT_ID": client["client_id"],
            "TESSERA_CLIENT_SECRET": client["client_secret"],
            **env,
        }
        # The package these processes import is this checkout's, not the
        # one installed in the environment.
        imported = subprocess.run(
            [sys.executable, "-c", "import tessera_verify; print(tessera_verify.__file__)"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        assert Path(imported).parent == PYTHON_DIR / "tessera_verify", imported
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
                cwd=EXAMPLES_DIR,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start in time:\n{self.log()}")
            time.sleep(0.05)

    def answers(self) -> bool:
        # Any answer (a 404 here) means it listens.
        try:
            requests.get(self.origin + "/", timeout=1)
            return True
        except requests.RequestException:
            return False

    def get(self, path: str, token: Optional[str] = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(self.origin + path, headers=headers, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Layout:
    """Tessera, the backend, and the frontend that calls it."""

    tessera: Tessera
    backend: Service
    frontend: Service


@pytest.fixture(scope="module")
def layout() -> Iterator[Layout]:
    # A Tessera of this module's own: its request log is only these services'.
    with ExitStack() as stack:
        tessera = Tessera()
        stack.callback(tessera.close)
        backend = Service("backend", tessera)
        stack.callback(backend.stop)
        frontend = Service("frontend", tessera, BACKEND_URL=backend.origin)
        stack.callback(frontend.stop)
        yield Layout(tessera, backend, frontend)


def refused(response: requests.Response) -> Optional[str]:
    """The reason of Tessera's 401 body, None for any other answer."""
    if response.status_code != 401:
        return None
    reason: Any = response.json().get("reason")
    return str(reason)


def test_the_dashboard_shows_the_users_orders_from_the_backend(layout: Layout) -> None:
    user = layout.tessera.user()
    user_id = user.id
    response = layout.frontend.get("/api/dashboard/", user.access)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "user": user.username,
        "orders": {
            "user_id": user_id,
            "orders": [
                {"id": user_id * 100 + 1, "item": "Coffee beans, 1 kg", "quantity": 2},
                {"id": user_id * 100 + 2, "item": "Ceramic mug", "quantity": 1},
            ],
        },
    }


def test_no_token_is_drfs_401_with_tesseras_challenge(layout: Layout) -> None:
    for service, path in ((layout.frontend, "/api/dashboard/"), (layout.backend, "/api/orders/")):
        response = service.get(path)
        assert response.status_code == 401
        # DRF's own body, as before the move (tessera_verify.django keeps it).
        assert response.json() == {"detail": "Authentication credentials were not provided."}
        assert response.headers["WWW-Authenticate"] == CHALLENGE


def test_a_logged_out_token_is_refused_by_both_services_within_a_second(layout: Layout) -> None:
    user = layout.tessera.user()
    assert layout.frontend.get("/api/dashboard/", user.access).status_code == 200
    # Both followers are on the stream (each opens it on its first verify).
    wait_until(lambda: layout.tessera.requests_to("/api/revocations/stream") >= 2, within=5)
    user.logout()
    # The frontend answers 401 only from its own verification (a refusal by
    # the backend is its 502), and the backend is asked directly: both
    # refuse the token within a second of the logout, each from its feed.
    wait_until(
        lambda: refused(layout.frontend.get("/api/dashboard/", user.access)) == "revoked"
        and refused(layout.backend.get("/api/orders/", user.access)) == "revoked",
        within=1.0,
    )
    for service, path in ((layout.frontend, "/api/dashboard/"), (layout.backend, "/api/orders/")):
        response = service.get(path, user.access)
        assert response.status_code == 401
        assert response.json() == refusal_body("revoked")
        assert response.headers["WWW-Authenticate"] == CHALLENGE_INVALID


def test_no_request_to_tessera_per_verified_token(layout: Layout) -> None:
    users = [layout.tessera.user() for _ in range(3)]
    # 3 x 20 dashboards: 120 verifications (the frontend's and the backend's).
    for _ in range(20):
        for user in users:
            assert layout.frontend.get("/api/dashboard/", user.access).status_code == 200
    wait_until(lambda: layout.tessera.requests_to("/api/revocations/stream") >= 2, within=5)
    log = layout.tessera.log()
    assert layout.tessera.requests_to("/oauth/introspect", log) == 0
    assert layout.tessera.requests_to("/api/token/verify", log) == 0
    # Only each follower's own: its token grant, the keys, the snapshot and
    # the stream (a second of each is a reconnection), over the whole module.
    for path in ("/oauth/token", "/.well-known/jwks.json", "/api/revocations", "/api/revocations/stream"):
        assert 2 <= layout.tessera.requests_to(path, log) <= 4, (path, log)
