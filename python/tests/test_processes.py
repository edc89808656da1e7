"""tessera_verify.Verifier across processes and failures: gunicorn
``--preload`` workers forked from a master that built the verifier, a bare
``os.fork()`` after the parent's follower started, Tessera going down and
coming back, and JWKS URLs that answer HTML, never answer, or hold no key."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from conftest import Tessera, wait_until
from tessera_verify import FeedUnavailable, TokenRefused, Verifier

TESTS = Path(__file__).resolve().parent
PACKAGE_ROOT = TESTS.parent
VENV_BIN = Path(sys.executable).parent
GUNICORN = VENV_BIN / "gunicorn"


def feed(verifier: Verifier) -> Dict[str, Any]:
    """The follower's status in this process (the verifier follows a feed)."""
    status = verifier.status()
    assert status is not None
    return dict(status)


def free_port() -> int:
    """A port nothing listens on now (another process may take it before
    it is used: callers retry)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, token: Optional[str] = None, timeout: float = 5.0) -> Tuple[int, Dict[str, Any]]:
    """One request on a connection of its own (``Connection: close``), so
    that gunicorn's workers take turns accepting them."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def stop_process(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Gunicorn:
    """``gunicorn --preload -w 2`` serving tests/wsgi_app.py."""

    def __init__(self, env: Dict[str, str], log: Path) -> None:
        self.process: Optional["subprocess.Popen[bytes]"] = None
        for _ in range(5):
            self.port = free_port()
            with open(log, "ab") as out:
                self.process = subprocess.Popen(
                    [
                        str(GUNICORN),
                        "--preload",
                        "--workers", "2",
                        "--worker-class", "sync",
                        "--bind", f"127.0.0.1:{self.port}",
                        "--graceful-timeout", "5",
                        "--chdir", str(TESTS),
                        "wsgi_app:app",
                    ],
                    env=env,
                    stdout=out,
                    stderr=out,
                )
            if self._ready(log):
                return
            stop_process(self.process)
        raise RuntimeError(f"gunicorn did not start:\n{log.read_text(errors='replace')}")

    def _ready(self, log: Path) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False  # the port was taken meanwhile, or worse: try again
            try:
                status, _ = get(self.port, "/status", timeout=2)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def gunicorn_env(tessera: Tessera) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TV_")}
    # The worktree's package first, as pytest sees it.
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), str(TESTS)])
    env["TV_JWKS_URL"] = tessera.jwks_url
    env["TV_REVOCATIONS"] = json.dumps(tessera.client())
    return env


@pytest.fixture
def served(gunicorn_env: Dict[str, str], tmp_path: Path) -> Iterator[Gunicorn]:
    server = Gunicorn(gunicorn_env, tmp_path / "gunicorn.log")
    yield server
    server.stop()


def each_worker(
    port: int,
    path: str,
    token: Optional[str],
    done: Callable[[Dict[int, List[Tuple[int, Dict[str, Any]]]]], bool],
    within: float,
    limit: int = 2000,
) -> Dict[int, List[Tuple[int, Dict[str, Any]]]]:
    """Requests ``path`` on fresh connections until ``done(answers by
    pid)``; fails past ``within`` seconds or ``limit`` requests."""
    answers: Dict[int, List[Tuple[int, Dict[str, Any]]]] = {}
    deadline = time.monotonic() + within
    for _ in range(limit):
        status, body = get(port, path, token)
        answers.setdefault(body["pid"], []).append((status, body))
        if done(answers):
            return answers
        if time.monotonic() > deadline:
            break
    pytest.fail(f"not within {within} s / {limit} requests: {answers!r:.2000}")


def test_gunicorn_preload_workers_follow_the_feed_each_and_both_refuse_a_logout_within_a_second(
    tessera: Tessera, served: Gunicorn
) -> None:
    assert served.process is not None
    master = served.process.pid
    user = tessera.user()

    # Before any verification: both workers answer, neither follows the feed
    # yet, and the master built the verifier without starting a thread.
    before = each_worker(served.port, "/status", None, lambda a: len(a) >= 2, within=20)
    assert len(before) == 2 and master not in before
    for pid, answers in before.items():
        for status, body in answers:
            assert status == 200
            assert body["status"]["started"] is False, body
            assert body["at_import"] == {"pid": master, "python_threads": 1, "native_threads": 1}

    # Each worker verifies (its follower starts lazily, in the worker).
    def both_verified(answers: Dict[int, List[Tuple[int, Dict[str, Any]]]]) -> bool:
        return sum(1 for got in answers.values() if any(s == 200 for s, _ in got)) >= 2

    verified = each_worker(served.port, "/", user.access, both_verified, within=20)
    assert set(verified) == set(before)
    for answers in verified.values():
        for status, body in answers:
            assert status == 200, body
            assert body["user_id"] == user.id and body["started"] is True

    # Both followers connected (each its own stream) before the logout.
    def both_connected(answers: Dict[int, List[Tuple[int, Dict[str, Any]]]]) -> bool:
        return sum(1 for got in answers.values() if got[-1][1]["status"]["connected"]) >= 2

    connected = each_worker(served.port, "/status", None, both_connected, within=10)
    for answers in connected.values():
        body = answers[-1][1]
        assert body["status"]["started"] is True
        # The follower runs on threads of the worker's own.
        assert body["native_threads"] > 1

    logout = time.monotonic()
    user.logout()
    refused_at: Dict[int, float] = {}
    deadline = logout + 5
    for _ in range(5000):
        status, body = get(served.port, "/", user.access)
        pid = body["pid"]
        if status == 401:
            assert body == {"reason": "revoked", "pid": pid}
            refused_at.setdefault(pid, time.monotonic() - logout)
        else:
            assert status == 200, body
            # A worker that has refused the token never takes it back.
            assert pid not in refused_at, (pid, refused_at)
        if len(refused_at) == 2 or time.monotonic() > deadline:
            break
    assert set(refused_at) == set(before), refused_at
    assert all(seconds <= 1.0 for seconds in refused_at.values()), refused_at
    print("refused after the logout, by worker:", {p: f"{s * 1000:.1f} ms" for p, s in refused_at.items()})


def test_a_forked_child_builds_its_own_follower_and_sees_a_logout(tessera: Tessera) -> None:
    verifier = Verifier(jwks_url=tessera.jwks_url, revocations=tessera.client())
    user = tessera.user()
    assert verifier.verify(user.access)["user_id"] == user.id
    wait_until(lambda: feed(verifier)["connected"], within=5)

    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by its exit code
        code = 70
        try:
            os.close(to_child_w)
            os.close(to_parent_r)
            code = _child(verifier, user.access, user.id, to_child_r, to_parent_w)
        except BaseException:
            code = 71
        finally:
            os._exit(code)

    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        # The child verified with a follower of its own, then said so.
        ready, _, _ = select.select([to_parent_r], [], [], 15)
        assert ready, "the child did not verify within 15 s"
        assert os.read(to_parent_r, 1) == b"v"
        start = time.monotonic()
        user.logout()
        # CLOCK_MONOTONIC is the machine's: the child times from here.
        os.write(to_child_w, f"{start!r}\n".encode())
        # The parent's own follower, untouched by the fork, sees it too.
        wait_until(lambda: _reason(verifier, user.access) == "revoked", within=1.0)
        code = _wait_child(pid, within=15)
    finally:
        os.close(to_parent_r)
        os.close(to_child_w)
    assert code == 0, _CHILD_CODES.get(code, code)


_CHILD_CODES = {
    3: "the child's status showed the parent's follower before it verified",
    4: "the child could not verify the token",
    5: "the child's follower did not start or connect",
    6: "the child did not hear of the logout",
    7: "the child saw the logout later than a second after it",
    70: "the child failed before its checks",
    71: "the child raised",
}


def _child(verifier: Verifier, token: str, user_id: int, from_parent: int, to_parent: int) -> int:
    """Runs in the forked child; its exit code."""
    # The parent's follower did not cross the fork: nothing started here yet.
    if feed(verifier)["started"]:
        return 3
    try:
        if verifier.verify(token)["user_id"] != user_id:
            return 4
    except Exception:
        return 4
    deadline = time.monotonic() + 5
    while not feed(verifier)["connected"]:
        if time.monotonic() > deadline:
            return 5
        time.sleep(0.01)
    os.write(to_parent, b"v")
    ready, _, _ = select.select([from_parent], [], [], 15)
    if not ready:
        return 6
    start = float(os.read(from_parent, 64).decode().strip())
    while time.monotonic() - start < 3:
        try:
            verifier.verify(token)
        except TokenRefused as refused:
            if refused.reason == "revoked":
                return 0 if time.monotonic() - start <= 1.0 else 7
            return 4
        time.sleep(0.005)
    return 6


def _wait_child(pid: int, within: float) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the child hung past {within} s")


def _reason(verifier: Verifier, token: str) -> Optional[str]:
    try:
        verifier.verify(token)
    except TokenRefused as refused:
        return refused.reason
    return None


SIGNING_KEY = "k" * 32 + "0123456789abcdef0123456789abcdef"  # 64 characters


def test_with_tessera_down_tokens_verify_until_max_staleness_then_again_once_it_is_back() -> None:
    server = Tessera(algorithm="HS256", settings=f'signing_key = "{SIGNING_KEY}"')
    try:
        # Restarts must keep the address the verifier follows: fix the
        # port the first start was given.
        port = server.origin.rsplit(":", 1)[1]
        text = server.config.read_text()
        assert 'bind = "127.0.0.1:0"\n' in text
        server.config.write_text(text.replace('bind = "127.0.0.1:0"', f'bind = "127.0.0.1:{port}"'))

        user = server.user()
        verifier = Verifier(
            secret=SIGNING_KEY, revocations={**server.client(), "max_staleness": 2}
        )
        assert verifier.verify(user.access)["user_id"] == user.id
        wait_until(lambda: feed(verifier)["connected"], within=5)

        # Killed, as a crash or an OOM kill does. (SIGTERM would do the
        # same, only 10 s later: Tessera's graceful stop waits on open
        # revocation streams, and conftest's stop() kills it after 10 s.)
        stopping = time.monotonic()
        assert server.process is not None
        server.process.kill()
        server.process.wait(10)
        server.process = None
        stopped = time.monotonic() - stopping
        # Verified locally, as if current, until max_staleness has passed
        # since the stream was lost (no earlier than the stop began).
        outcomes: List[Tuple[float, str]] = []
        while time.monotonic() - stopping < stopped + 6:
            try:
                verifier.verify(user.access)
                outcomes.append((time.monotonic() - stopping, "ok"))
            except FeedUnavailable as unavailable:
                assert unavailable.retry_after >= 1
                assert unavailable.retry_after_header.isdigit()
                outcomes.append((time.monotonic() - stopping, "unavailable"))
                break
            time.sleep(0.02)
        assert outcomes and outcomes[-1][1] == "unavailable", outcomes[-3:]
        first_unavailable = outcomes[-1][0]
        assert all(kind == "ok" for _, kind in outcomes[:-1])
        assert 1.95 <= first_unavailable <= stopped + 3.5, (first_unavailable, stopped)
        print(f"killed in {stopped:.2f} s; unavailable {first_unavailable:.2f} s after")
        assert outcomes[0][1] == "ok"
        assert feed(verifier)["connected"] is False
        with pytest.raises(FeedUnavailable):
            verifier.verify(user.access)
        # A forged token is still refused as such, feed or no feed.
        with pytest.raises(TokenRefused) as forged:
            verifier.verify(user.access[:-4] + "AAAA")
        assert forged.value.reason == "invalid"

        server.start()
        assert server.origin == f"http://127.0.0.1:{port}"
        took = wait_until(lambda: _verifies(verifier, user.access), within=8, step=0.05)
        assert feed(verifier)["connected"] is True
        print(f"verifying again {took:.2f} s after the restart")
        # And it follows again: a logout now is refused within a second.
        user.logout()
        wait_until(lambda: _reason(verifier, user.access) == "revoked", within=1.0)
    finally:
        # Killed first: the verifier's stream would hold a SIGTERM 10 s.
        if server.process is not None:
            server.process.kill()
            server.process.wait(10)
            server.process = None
        server.close()


def _verifies(verifier: Verifier, token: str) -> bool:
    try:
        verifier.verify(token)
        return True
    except FeedUnavailable:
        return False


class _Answers(http.server.BaseHTTPRequestHandler):
    """Serves the server's ``body`` with its ``content_type`` on any path."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body: bytes = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", self.server.content_type)  # type: ignore[attr-defined]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve_body() -> Iterator[Callable[[bytes, str], str]]:
    servers: List[http.server.ThreadingHTTPServer] = []

    def serve(body: bytes, content_type: str) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
        server.daemon_threads = True
        server.body = body  # type: ignore[attr-defined]
        server.content_type = content_type  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    held: List[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                pass

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/.well-known/jwks.json"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


def _refused_in_time(verifier: Verifier, token: str, within: float) -> float:
    start = time.monotonic()
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(token)
    took = time.monotonic() - start
    assert refused.value.reason == "invalid"
    assert took <= within, took
    return took


def test_a_jwks_url_answering_html_refuses_as_invalid(tessera: Tessera, serve_body: Callable[[bytes, str], str]) -> None:
    user = tessera.user()
    url = serve_body(b"<!doctype html><html><body>Sign in</body></html>", "text/html")
    _refused_in_time(Verifier(jwks_url=url), user.access, within=2)


def test_a_jwks_url_with_no_key_refuses_as_invalid(tessera: Tessera, serve_body: Callable[[bytes, str], str]) -> None:
    user = tessera.user()
    url = serve_body(b'{"keys": []}', "application/json")
    _refused_in_time(Verifier(jwks_url=url), user.access, within=2)


def test_a_jwks_url_that_never_answers_refuses_as_invalid_after_the_timeout(tessera: Tessera, silent_url: str) -> None:
    user = tessera.user()
    verifier = Verifier(jwks_url=silent_url)
    took = _refused_in_time(verifier, user.access, within=7)
    # It did wait for an answer (the HTTP timeout is 5 s), and no longer.
    assert took >= 4, took
    # The next verification does not wait again: no new fetch before
    # jwks_min_interval (10 s) has passed.
    _refused_in_time(verifier, user.access, within=0.5)
