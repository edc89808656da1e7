"""A real Tessera process for the package's tests.

``TESSERA_BIN`` names the ``tessera`` binary (python/run-tests passes the one
``cargo test --workspace`` built). Each ``Tessera`` runs in a directory of its
own, on SQLite, with its request log (``server.log``) kept so that tests can
count what a service asked it.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import requests

PASSWORD = "vivid-otter-canyon-1987!"
_names = itertools.count()


def binary() -> str:
    path = os.environ.get("TESSERA_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("set TESSERA_BIN to the tessera binary (python/run-tests does)")
    return path


class Tessera:
    """One ``tessera serve`` process and what tests do with it."""

    def __init__(self, settings: str = "", algorithm: str = "ES256") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tessera-python-"))
        self.config = self.dir / "tessera.toml"
        self.config.write_text(
            'bind = "127.0.0.1:0"\n'
            f'database_url = "sqlite://{self.dir / "tessera.db"}"\n'
            f'algorithm = "{algorithm}"\n'
            'signup_rate_limit = "off"\n'
            'login_rate_limit = "off"\n'
            'user_rate_limit = "off"\n'
            f"{settings}\n"
        )
        self.log_path = self.dir / "server.log"
        self.process: Optional[subprocess.Popen] = None
        self.start()

    def env(self) -> Dict[str, str]:
        # Tessera refuses settings it does not know, and reads every
        # TESSERA_* variable as one (TESSERA_BIN is the tests' own).
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env["TESSERA_LOG"] = "info"
        # Password hashing at test cost (the server's own switch for tests).
        env["TESSERA_TEST_INSECURE_HASHING"] = "1"
        return env

    def start(self) -> None:
        """Starts (or restarts) the server; same database, same port after a
        restart is not promised."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [binary(), "--config", str(self.config), "serve"],
            cwd=self.dir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode()
            if not line:
                raise RuntimeError(f"tessera exited before listening:\n{self.log()}")
            if "listening on " in line:
                self.origin = "http://" + line.split("listening on ", 1)[1].strip()
                return
        raise RuntimeError("tessera did not start in time")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def jwks_url(self) -> str:
        return self.origin + "/.well-known/jwks.json"

    def url(self, path: str) -> str:
        return self.origin + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def requests_to(self, path: str, log: Optional[str] = None) -> int:
        """How many requests the log shows to exactly ``path``."""
        text = self.log() if log is None else log
        pattern = re.compile(r"path=" + re.escape(path) + r"[} ]")
        return sum(1 for line in text.splitlines() if pattern.search(line))

    def cli(self, *args: str, stdin: Optional[str] = None) -> str:
        """Runs ``tessera ARGS`` on this server's database; its stdout."""
        done = subprocess.run(
            [binary(), "--config", str(self.config), *args],
            cwd=self.dir,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def client(self, name: Optional[str] = None, scope: str = "revocations") -> Dict[str, str]:
        """A new service client: ``{"url", "client_id", "client_secret"}``,
        the ``revocations`` option of a Verifier."""
        out = self.cli("clients", "add", name or f"svc{next(_names)}", "--scope", scope)
        fields = dict(
            line.split(": ", 1) for line in out.splitlines() if ": " in line
        )
        return {
            "url": self.origin,
            "client_id": fields["client_id"],
            "client_secret": fields["client_secret"],
        }

    def user(self, username: Optional[str] = None) -> "User":
        """A new user, signed up and logged in."""
        name = username or f"user{next(_names)}"
        r = requests.post(
            self.url("/api/auth/signup"),
            json={"username": name, "password": PASSWORD},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return User(self, name)

    def admin(self) -> "User":
        """A staff superuser, logged in (made with the CLI)."""
        name = f"admin{next(_names)}"
        self.cli("createsuperuser", "--username", name, "--password-stdin", stdin=PASSWORD + "\n")
        return User(self, name)


class User:
    """A logged-in user: ``access`` and ``refresh`` tokens."""

    def __init__(self, tessera: Tessera, username: str) -> None:
        self.tessera = tessera
        self.username = username
        r = requests.post(
            tessera.url("/api/token/"),
            json={"username": username, "password": PASSWORD},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        self.access: str = body["access"]
        self.refresh: str = body["refresh"]

    def logout(self) -> None:
        r = requests.post(
            self.tessera.url("/api/auth/logout"),
            json={"refresh": self.refresh},
            headers={"Authorization": f"Bearer {self.access}"},
            timeout=10,
        )
        assert r.status_code == 204, r.text

    @property
    def id(self) -> int:
        r = requests.get(
            self.tessera.url("/api/auth/me"),
            headers={"Authorization": f"Bearer {self.access}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return int(r.json()["id"])

    def another_access(self) -> str:
        """A new access token of the same session (a refresh)."""
        r = requests.post(
            self.tessera.url("/api/token/refresh/"), json={"refresh": self.refresh}, timeout=10
        )
        assert r.status_code == 200, r.text
        body = r.json()
        self.refresh = body.get("refresh", self.refresh)
        return body["access"]


def wait_until(check, within: float = 1.0, step: float = 0.01) -> float:
    """Polls ``check()`` until it is true; the seconds it took. Fails past
    ``within``."""
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > within:
            pytest.fail(f"not within {within} s")
        time.sleep(step)


@pytest.fixture(scope="session")
def tessera() -> Iterator[Tessera]:
    server = Tessera()
    yield server
    server.close()


@pytest.fixture
def fresh_tessera() -> Iterator[Tessera]:
    """A server of the test's own (to restart, stop, or read a clean log)."""
    server = Tessera()
    yield server
    server.close()
