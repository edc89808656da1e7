"""Verification releases the GIL: while one thread's verify() waits on the
network (a first JWKS fetch here), other Python threads run. The JWKS
server is itself Python code in a thread of this process, so it can only
answer if verify() let go of the GIL: held, the fetch would wait on a server
that cannot run, until the verifier's HTTP timeout refused the token."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tessera_verify import Verifier


def test_a_verification_waiting_on_the_network_lets_other_threads_run() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: Dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "ES256", "use": "sig"})
    received = threading.Event()
    release = threading.Event()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            received.set()
            # Holds the answer until the test has seen this thread run.
            release.wait(10)
            body = json.dumps({"keys": [jwk]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        now = int(time.time())
        token = jwt.encode(
            {
                "token_type": "access",
                "exp": now + 300,
                "iat": now,
                "jti": "a" * 32,
                "fid": "b" * 32,
                "user_id": 7,
                "sub": "7",
                "ver": 0,
            },
            key,
            algorithm="ES256",
            headers={"kid": "k1"},
        )
        verifier = Verifier(jwks_url=f"http://127.0.0.1:{server.server_port}/jwks.json")
        results: List[Any] = []
        worker = threading.Thread(target=lambda: results.append(_verify(verifier, token)))
        started = time.monotonic()
        worker.start()
        # The server's thread ran while verify() was in flight.
        assert received.wait(5), "the JWKS server never ran: verify() held the GIL"
        # And so does this one: plain Python work, the verification pending.
        assert worker.is_alive()
        assert sum(range(100_000)) == 4_999_950_000
        release.set()
        worker.join(10)
        assert not worker.is_alive()
        assert time.monotonic() - started < 5
        assert results == [7]
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _verify(verifier: Verifier, token: str) -> Any:
    try:
        return verifier.verify(token)["user_id"]
    except Exception as error:  # the test reads it from results
        return repr(error)
