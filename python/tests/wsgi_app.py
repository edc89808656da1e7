"""A minimal WSGI service for test_processes.py's gunicorn test.

Builds ONE ``tessera_verify.Verifier`` at import time, from the environment
(``TV_JWKS_URL`` and ``TV_REVOCATIONS``, the ``revocations`` dict as JSON):
with ``gunicorn --preload`` that is in the master, before it forks its
workers. It records, at import, the master's pid and how many threads it
has (Python's and the kernel's count), so the test can show that building
the verifier started none.

Routes (answers are JSON, always with the answering worker's ``pid``):
- ``GET /status``: the verifier's ``status()`` in this worker, the import
  record, and this worker's native thread count; verifies nothing.
- anything else: verifies the bearer token: 200 ``{"pid", "user_id",
  "started"}`` or 401 ``{"reason", "pid"}`` (503 ``{"reason":
  "unavailable"}`` when the feed is out of reach).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Tuple

import tessera_verify


def native_threads() -> int:
    """The kernel's count of this process's threads (``Threads:`` in
    /proc/self/status), which sees threads Python does not know of."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no Threads: line in /proc/self/status")


verifier = tessera_verify.Verifier(
    jwks_url=os.environ["TV_JWKS_URL"],
    revocations=json.loads(os.environ["TV_REVOCATIONS"]),
)

# After the verifier is built: what the master looks like when it forks.
AT_IMPORT: Dict[str, Any] = {
    "pid": os.getpid(),
    "python_threads": threading.active_count(),
    "native_threads": native_threads(),
}

StartResponse = Callable[[str, List[Tuple[str, str]]], Any]


def answer(start_response: StartResponse, status: str, body: Dict[str, Any]) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def app(environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI application."""
    pid = os.getpid()
    if environ.get("PATH_INFO") == "/status":
        return answer(
            start_response,
            "200 OK",
            {
                "pid": pid,
                "status": verifier.status(),
                "at_import": AT_IMPORT,
                "native_threads": native_threads(),
            },
        )
    try:
        token = tessera_verify.bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if token is None:
            return answer(start_response, "401 Unauthorized", {"reason": "none", "pid": pid})
        claims = verifier.verify(token)
    except tessera_verify.TokenRefused as refused:
        return answer(start_response, "401 Unauthorized", {"reason": refused.reason, "pid": pid})
    except tessera_verify.FeedUnavailable:
        return answer(start_response, "503 Service Unavailable", {"reason": "unavailable", "pid": pid})
    status = verifier.status()
    return answer(
        start_response,
        "200 OK",
        {"pid": pid, "user_id": claims["user_id"], "started": bool(status and status["started"])},
    )
