"""Driver of bench/mfa.sh: what a login with TOTP costs the server against a
password-only login, on one keep-alive connection, one request at a time.

Usage: python mfa_bench.py ADDRESS USERS

Signs up 2 x USERS users; the second half enrol TOTP (a fresh login, POST
/api/auth/mfa/totp, confirm with pyotp's code of the secret). Then, in
USERS rounds alternating which goes first: a password-only login of a user
without a factor (one request), and a login of a user with TOTP (the
password step answered 401 mfa_required, then POST /api/auth/mfa/verify with
pyotp's code of the next step, since the confirmation used the current one
and each step is accepted once), and a GET /healthz (the round trip alone).
Prints the medians and the ratio (TOTP login's two requests, less one
round trip) / (password-only login). Every answer is checked.
"""

import http.client
import json
import statistics
import sys
import time

import pyotp

PASSWORD = "vivid-otter-canyon-1987!"


class Client:
    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def call(self, method: str, path: str, body=None, token=None, want=200):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body)
        start = time.perf_counter()
        self.conn.request(method, path, data, headers)
        answer = self.conn.getresponse()
        raw = answer.read()
        took = time.perf_counter() - start
        if answer.status != want:
            sys.exit(f"{method} {path} answered {answer.status}, not {want}: {raw[:300]!r}")
        return (json.loads(raw) if raw else None), took


def main() -> None:
    address, users = sys.argv[1], int(sys.argv[2])
    c = Client(address)
    plain = [f"plain{i}" for i in range(users)]
    enrolled = {}
    for name in plain:
        c.call("POST", "/api/auth/signup", {"username": name, "password": PASSWORD}, want=201)
    for i in range(users):
        name = f"totp{i}"
        c.call("POST", "/api/auth/signup", {"username": name, "password": PASSWORD}, want=201)
        pair, _ = c.call("POST", "/api/token/", {"username": name, "password": PASSWORD})
        started, _ = c.call("POST", "/api/auth/mfa/totp", token=pair["access"])
        totp = pyotp.parse_uri(started["otpauth_uri"])
        c.call("POST", "/api/auth/mfa/totp/confirm", {"code": totp.now()}, token=pair["access"])
        enrolled[name] = totp
    password_only, first_step, second_step, round_trip = [], [], [], []
    for i in range(users):
        def plain_login():
            _, took = c.call("POST", "/api/token/", {"username": plain[i], "password": PASSWORD})
            password_only.append(took)

        def totp_login():
            name = f"totp{i}"
            answer, took = c.call(
                "POST", "/api/token/", {"username": name, "password": PASSWORD}, want=401
            )
            if answer.get("code") != "mfa_required":
                sys.exit(f"expected mfa_required: {answer}")
            first_step.append(took)
            code = enrolled[name].at(time.time() + 30)
            pair, took = c.call(
                "POST", "/api/auth/mfa/verify", {"mfa_token": answer["mfa_token"], "code": code}
            )
            if "access" not in pair:
                sys.exit(f"verify gave no tokens: {pair}")
            second_step.append(took)

        for step in (plain_login, totp_login) if i % 2 == 0 else (totp_login, plain_login):
            step()
        _, took = c.call("GET", "/healthz")
        round_trip.append(took)
    ms = lambda xs: statistics.median(xs) * 1e3  # noqa: E731
    pw, first, second, rtt = ms(password_only), ms(first_step), ms(second_step), ms(round_trip)
    print(f"password-only login          median {pw:8.2f} ms ({users} logins)")
    print(f"TOTP login, password step    median {first:8.2f} ms")
    print(f"TOTP login, POST mfa/verify  median {second:8.2f} ms")
    print(f"round trip (GET /healthz)    median {rtt:8.2f} ms")
    ratio = (first + second - rtt) / pw
    verdict = "PASS" if ratio <= 1.1 else "FAIL"
    print(f"TOTP login / password-only login, one round trip aside: {ratio:.3f} (target <= 1.10) {verdict}")


if __name__ == "__main__":
    main()
