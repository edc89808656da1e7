#!/usr/bin/env python3
"""The third red-team round's probes (docs/SECURITY.md), run from outside
against a release build of `tessera`, each on a server of its own in a
temporary directory. Prints one line per probe: what was measured and
whether it shows the finding fixed.

    cargo build --release
    sudo python3 bench/probes.py [path/to/tessera [probe_name ...]]   # root: the disk probe mounts a tmpfs

Bounded: every loop has a count and a deadline; everything talks to
127.0.0.1 (and 127.0.0.2, another loopback address, as a second client);
servers and mounts are removed on exit. Uses the standard library only.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/release/tessera"
# Optionally, the names of the probes to run (e.g. probe_keys); all by default.
ONLY = set(sys.argv[2:])
PASSWORD = "vivid-otter-canyon-1987!"
RESULTS = []


class Server:
    """A `tessera serve` process on a config of its own."""

    def __init__(self, config="", directory=None, env=None):
        self.dir = directory or tempfile.mkdtemp(prefix="tessera-probe-")
        self.config = os.path.join(self.dir, "tessera.toml")
        text = 'bind = "127.0.0.1:0"\nsignup_rate_limit = "off"\n' + config + "\n"
        if "database_url" not in config:
            text += f'database_url = "sqlite://{self.dir}/tessera.db"\n'
        with open(self.config, "w") as f:
            f.write(text)
        self.env = dict(os.environ, **(env or {}))
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [BINARY, "--config", self.config, "serve"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=self.env,
            text=True,
        )
        deadline = time.time() + 30
        self.addr = None
        while time.time() < deadline and self.addr is None:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited: {self.read_log()}")
            if "listening on" in line:
                self.addr = line.split("listening on")[1].split()[0]
        self.base = f"http://{self.addr}"

    def read_log(self):
        with open(os.path.join(self.dir, "server.log")) as f:
            return f.read()

    def cli(self, *args, stdin=None, env=None):
        out = subprocess.run(
            [BINARY, "--config", self.config, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=dict(self.env, **(env or {})),
            timeout=60,
        )
        return out.returncode, out.stdout, out.stderr

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def request(self, method, path, body=None, token=None, timeout=10, headers=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def signup(self, name, email=""):
        return self.request(
            "POST", "/api/auth/signup", {"username": name, "password": PASSWORD, "email": email}
        )[0]

    def login(self, name, password=PASSWORD):
        status, _, body = self.request(
            "POST", "/api/token/", {"username": name, "password": password}
        )
        return status, (json.loads(body) if body and body[:1] == b"{" else {})


def report(item, fixed, what):
    RESULTS.append(fixed)
    print(f"{'FIXED' if fixed else 'NOT FIXED':9} item {item:>2}: {what}", flush=True)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# 1. A full disk, then freed (root: mounts an 8 MB tmpfs).
def probe_disk_full():
    mount = tempfile.mkdtemp(prefix="tessera-disk-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]).returncode:
        print("skipped   item  1: cannot mount a tmpfs (run as root)")
        return
    s = None
    try:
        s = Server(
            f'database_url = "sqlite://{mount}/tessera.db"\nlogin_rate_limit = "off"\n'
            'user_rate_limit = "off"\nrotate_refresh_tokens = true\nblacklist_after_rotation = true'
        )
        s.signup("alice")
        filler = os.path.join(mount, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        statuses = set()
        for i in range(40):
            statuses.add(s.login("alice")[0])
            statuses.add(s.signup(f"full{i}"))
        ready_full = s.request("GET", "/readyz")[0]
        os.remove(filler)
        start = time.time()
        ok = 0
        while time.time() - start < 30:
            status, tokens = s.login("alice")
            if status == 200 and s.signup(f"after{int(time.time()*1000)}") == 201:
                ok += 1
                if ok == 5:
                    break
            time.sleep(0.2)
        took = time.time() - start
        locked = "database is locked" in s.read_log()
        report(
            1,
            ok == 5 and 500 not in statuses and ready_full == 503 and not locked,
            f"while full: statuses {sorted(statuses)}, /readyz {ready_full}; after freeing: "
            f"logins and signups work after {took:.1f} s; 'database is locked' in log: {locked}",
        )
    finally:
        if s:
            s.stop()
        subprocess.run(["umount", "-l", mount])


def connect(addr, source="127.0.0.1"):
    host, port = addr.rsplit(":", 1)
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(5)
    sock.connect((host, int(port)))
    return sock


def healthz_from(addr, source, timeout=1.0):
    try:
        sock = connect(addr, source)
        sock.settimeout(timeout)
        start = time.time()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = sock.recv(64)
        sock.close()
        return answer.startswith(b"HTTP/1.1 200"), time.time() - start
    except OSError:
        return False, timeout


# 2. One client holding every connection slot.
def probe_connections():
    s = Server()
    held = []
    try:
        for _ in range(1030):
            try:
                sock = connect(s.addr)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                held.append(sock)
            except OSError:
                pass
        time.sleep(0.5)
        answered = [healthz_from(s.addr, "127.0.0.2") for _ in range(13)]
        for sock in held:
            sock.close()
        held = []
        silent = []
        for _ in range(10000):
            try:
                silent.append(connect(s.addr))
            except OSError:
                break
        burst = [healthz_from(s.addr, "127.0.0.2") for _ in range(12)]
        for sock in silent:
            sock.close()
        ok_idle = sum(a for a, _ in answered)
        ok_silent = sum(a for a, _ in burst)
        worst = max(t for _, t in answered + burst)
        report(
            2,
            ok_idle == 13 and ok_silent == 12 and worst < 1.0,
            f"/healthz from another address: {ok_idle}/13 beside 1,030 kept-alive sockets, "
            f"{ok_silent}/12 beside {len(silent)} silent ones; slowest {worst*1000:.0f} ms",
        )
    finally:
        s.stop()


# 3. keys rotate to ES256 on an HS256 deployment.
def probe_keys():
    s = Server('login_rate_limit = "off"')
    try:
        s.cli("createsuperuser", "--username", "root", "--password-stdin", stdin=PASSWORD + "\n")
        status, tokens = s.login("root")
        payload = json.loads(base64.urlsafe_b64decode(tokens["access"].split(".")[1] + "=="))
        db = f"{s.dir}/tessera.db"
        import sqlite3

        row = sqlite3.connect(db).execute(
            "SELECT kid, private_key FROM signing_keys WHERE algorithm = 'HS256'"
        ).fetchone()
        kid, secret = row
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        body = b64(json.dumps(dict(payload, exp=int(time.time()) + 86400, jti="f" * 32)).encode())
        signature = b64(hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest())
        forged = f"{header}.{body}.{signature}"
        before = s.request("GET", "/api/admin/users", token=forged)[0]
        # --now: the switch itself, not key_publish_lead's 5 minutes of HMAC
        # signing on while ES256 is published ahead.
        s.cli("keys", "rotate", "--now", env={"TESSERA_ALGORITHM": "ES256"})
        time.sleep(1.5)
        after = s.request("GET", "/api/admin/users", token=forged)[0]
        code, _, err = s.cli("serve")
        report(
            3,
            before == 200 and after == 401 and code != 0,
            f"forged HMAC admin token: {before} before, {after} after `keys rotate` to ES256; "
            f"a start with the old HS256 setting exits {code}: {err.strip().splitlines()[-1][:90]}",
        )
    finally:
        s.stop()


# 4. Throttled logins writing an audit row each.
def probe_throttled_rows():
    s = Server('login_rate_limit = "1/min"')
    try:
        start = time.time()
        sent = 0
        while time.time() - start < 5 and sent < 20000:
            s.login("victim", "wrong")
            sent += 1
        time.sleep(1)
        import sqlite3

        rows = sqlite3.connect(f"{s.dir}/tessera.db").execute(
            "SELECT COUNT(*) FROM audit_events WHERE event = 'login_throttled'"
        ).fetchone()[0]
        report(4, rows <= 2, f"{sent} refused logins in 5 s wrote {rows} login_throttled rows")
    finally:
        s.stop()


def import_users(s, rows):
    path = os.path.join(s.dir, "users.jsonl")
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return s.cli("import-users", "--jsonl", path)


# 6. Login timing across kinds of accounts; 7. a PBKDF2 hash with a 256 KiB key.
def probe_timing_and_cost():
    s = Server('login_rate_limit = "off"\nuser_rate_limit = "off"')
    try:
        s.signup("native")
        salt = "YlLjahIQDvo417sCPoHORx"
        big = base64.b64encode(b"\0" * 256 * 1024).decode()
        import_users(
            s,
            [
                {"username": "unusable", "password": "!unusable"},
                {"username": "huge", "password": f"pbkdf2_sha256$200000${salt}${big}"},
            ],
        )
        times = {}
        for name in ["native", "unknown-user", "unusable"] * 15:
            start = time.time()
            s.login(name, "wrong-password-x")
            times.setdefault(name, []).append(time.time() - start)
        medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
        spread = max(medians.values()) / min(medians.values())
        report(
            6,
            spread < 1.5,
            "median wrong-password login: "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in medians.items()),
        )
        start = time.time()
        status, _ = s.login("huge", "wrong")
        took = time.time() - start
        native_ok = s.login("native")[0] == 200
        report(
            7,
            took < 1.0 and native_ok,
            f"login against the 256 KiB PBKDF2 hash answered {status} in {took*1000:.0f} ms; native login {native_ok}",
        )
    finally:
        s.stop()


# 10. Control characters in a username reaching `tessera audit`.
def probe_audit_escapes():
    s = Server()
    try:
        nasty = "x\u009b\u202e\u2028\x1b[1A\x7f"
        s.login(nasty, "wrong")
        time.sleep(1)
        code, out, _ = s.cli("audit")
        raw = [c for c in out if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u2028"]
        report(10, code == 0 and not raw, f"`tessera audit` printed {len(raw)} raw control characters")
    finally:
        s.stop()


# 13. An imported user with the largest id.
def probe_huge_id():
    s = Server()
    try:
        code, out, err = import_users(
            s,
            [{"id": 9223372036854775807, "username": "big", "password": "!x"}],
        )
        signup = s.signup("after")
        report(13, signup == 201, f"import of id 2^63-1: exit {code}; a later signup answers {signup}")
    finally:
        s.stop()


# 16. CLI actions leave audit events; ten-year tokens.
def probe_cli_audit():
    s = Server()
    try:
        s.signup("admin")
        code, _, err = s.cli("token", "issue", "--username", "admin", "--lifetime", "3650d")
        s.cli("users", "set-password", "admin", "--password-stdin", stdin=PASSWORD + "x\n")
        _, out, _ = s.cli("audit")
        report(
            16,
            code != 0 and "password_set" in out,
            f"`token issue --lifetime 3650d` exits {code}; set-password audited: {'password_set' in out}",
        )
    finally:
        s.stop()


# 12. An imported bcrypt hash and a password over 72 bytes.
def probe_bcrypt_72():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt  # glibc's bcrypt, so that the hash is made elsewhere

    owner = "x" * 72 + "owner"
    hashed = crypt.crypt(owner, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    s = Server('login_rate_limit = "off"')
    try:
        import_users(s, [{"username": "bob", "password": hashed}])
        intruder = s.login("bob", "x" * 72 + "attacker")[0]
        report(12, intruder == 401, f"another password sharing the first 72 bytes: {intruder}")
    finally:
        s.stop()


# 14. A NUL in one imported hash among 2,001 rows.
def probe_import_nul():
    s = Server()
    try:
        rows = [
            {"username": f"u{i}", "password": "!x" if i != 1000 else "pbkdf2_sha256$1$a\u0000$b"}
            for i in range(2001)
        ]
        code, out, err = import_users(s, rows)
        import sqlite3

        imported = sqlite3.connect(f"{s.dir}/tessera.db").execute("SELECT COUNT(*) FROM users").fetchone()[0]
        named = "line 1001" in (out + err)
        report(14, imported == 2000 and named, f"import exit {code}: {imported} of 2,001 imported; the bad row named by its line: {named}")
    finally:
        s.stop()


# 17. Staff against superusers, and the last staff user.
def probe_staff_rules():
    s = Server('login_rate_limit = "off"')
    try:
        s.cli("createsuperuser", "--username", "root", "--password-stdin", stdin=PASSWORD + "\n")
        s.signup("alice")
        root = s.login("root")[1]["access"]
        me = lambda token: json.loads(s.request("GET", "/api/auth/me", token=token)[2])["id"]
        root_id = me(root)
        demote_self = s.request("PATCH", f"/api/admin/users/{root_id}", {"is_staff": False}, token=root)[0]
        alice = s.login("alice")[1]["access"]
        s.request("PATCH", f"/api/admin/users/{me(alice)}", {"is_staff": True}, token=root)
        alice = s.login("alice")[1]["access"]
        deactivate_root = s.request("PATCH", f"/api/admin/users/{root_id}", {"is_active": False}, token=alice)[0]
        report(
            17,
            demote_self == 409 and deactivate_root == 403,
            f"the only staff user demoting itself: {demote_self}; plain staff deactivating a superuser: {deactivate_root}",
        )
    finally:
        s.stop()


# 5. `tessera audit --follow` while another writer floods the audit table.
def probe_audit_follow():
    import sqlite3

    s = Server()
    follower = None
    try:
        follower = subprocess.Popen(
            [BINARY, "--config", s.config, "audit", "--follow"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=s.env,
        )
        time.sleep(1.5)
        db = sqlite3.connect(f"{s.dir}/tessera.db", timeout=30)
        flood = 5000
        now = int(time.time())
        for chunk in range(0, flood, 500):
            db.executemany(
                "INSERT INTO audit_events (at, event, user_id, actor_id, ip, user_agent, detail) "
                "VALUES (?, 'login_failed', NULL, NULL, '198.51.100.1', '', ?)",
                [(now, json.dumps({"username": f"flood{i}"})) for i in range(chunk, chunk + 500)],
            )
            db.commit()
            time.sleep(0.05)
        seen = set()
        deadline = time.time() + 20
        os.set_blocking(follower.stdout.fileno(), False)
        buffer = ""
        while time.time() < deadline and len(seen) < flood:
            chunk = follower.stdout.read() or ""
            buffer += chunk
            *lines, buffer = buffer.split("\n")
            for line in lines:
                if "flood" in line:
                    seen.add(line.split("flood")[1].split('"')[0])
            time.sleep(0.1)
        report(5, len(seen) == flood, f"`audit --follow` printed {len(seen)} of {flood} events written in a burst")
    finally:
        if follower:
            follower.kill()
        s.stop()


# 9. Change ids rolled back on PostgreSQL (needs the machine's PostgreSQL and psql).
def probe_rolled_back_ids():
    url = os.environ.get("PROBE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"tessera_probe_{os.getpid()}"
    psql = lambda db, sql: subprocess.run(
        ["psql", url.rsplit("/", 1)[0] + "/" + db, "-qAtc", sql], capture_output=True, text=True
    )
    if shutil.which("psql") is None or psql("postgres", f"CREATE DATABASE {name}").returncode:
        print("skipped   item  9: no PostgreSQL to create a database on")
        return
    s = None
    try:
        s = Server(f'database_url = "{url.rsplit("/", 1)[0]}/{name}"\nlogin_rate_limit = "off"\nuser_rate_limit = "off"')
        s.signup("alice")
        for _ in range(20):
            access = s.login("alice")[1]["access"]
            psql(name, "BEGIN; INSERT INTO changes (kind, subject, expires_at, created_at) VALUES ('user', '0', NULL, 0); ROLLBACK;")
            s.request("POST", "/api/auth/logout", {}, token=access)
        time.sleep(1.5)
        reloads = s.read_log().count("reloading all state")
        report(9, reloads == 0, f"20 change ids rolled back between logouts: {reloads} full reloads")
    finally:
        if s:
            s.stop()
        psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class MailSink:
    """aiosmtpd writing every mail it gets into a Maildir (the test suite's
    Python environment has it); `None` from `start` without it."""

    @staticmethod
    def start():
        python = os.path.expanduser("~/.cache/tessera-pyjwt/bin/python")
        if not os.path.exists(python):
            return None
        sink = MailSink()
        # A folder that does not exist yet: the sink makes a Maildir of it.
        sink.root = tempfile.mkdtemp(prefix="tessera-maildir-")
        sink.maildir = os.path.join(sink.root, "maildir")
        port_sock = socket.socket()
        port_sock.bind(("127.0.0.1", 0))
        sink.port = port_sock.getsockname()[1]
        port_sock.close()
        sink.proc = subprocess.Popen(
            [python, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{sink.port}",
             "-c", "aiosmtpd.handlers.Mailbox", sink.maildir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        return sink

    def config(self):
        return f'smtp_url = "smtp://127.0.0.1:{self.port}"\npublic_url = "http://127.0.0.1:8000"\n'

    def mails(self):
        folder = os.path.join(self.maildir, "new")
        if not os.path.isdir(folder):
            return []
        texts = []
        for name in sorted(os.listdir(folder), key=lambda n: os.path.getmtime(os.path.join(folder, n))):
            with open(os.path.join(folder, name), errors="replace") as f:
                texts.append(f.read().replace("=\n", "").replace("=3D", "="))
        return texts

    def wait_for(self, count, within=10):
        deadline = time.time() + within
        while time.time() < deadline and len(self.mails()) < count:
            time.sleep(0.2)
        return self.mails()

    def stop(self):
        self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def link_token(mail, parameter):
    import re

    found = re.search(parameter + r"=([A-Za-z0-9_-]+)", mail)
    return found.group(1) if found else None


# 8. Reset mail through thirty accounts sharing one address.
def probe_reset_multiplied():
    sink = MailSink.start()
    if sink is None:
        print("skipped   item  8: no aiosmtpd (.ci/install-test-tools installs it)")
        return
    s = None
    try:
        s = Server(sink.config() + 'trusted_proxies = ["127.0.0.1"]')
        for i in range(30):
            s.signup(f"acct{i}", "victim@example.com")
        for i in range(8):
            s.request(
                "POST",
                "/api/auth/password/reset",
                {"email": "victim@example.com"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
        time.sleep(8)
        mails = len(sink.mails())
        report(8, 1 <= mails <= 5, f"30 accounts on one address, 8 reset requests: {mails} mails delivered")
    finally:
        if s:
            s.stop()
        sink.stop()


# 11. A reset link after staff changed the account's address.
def probe_link_after_address_change():
    sink = MailSink.start()
    if sink is None:
        print("skipped   item 11: no aiosmtpd")
        return
    s = None
    try:
        s = Server(sink.config())
        s.cli("createsuperuser", "--username", "root", "--password-stdin", stdin=PASSWORD + "\n")
        s.signup("bob", "bob@old.example")
        s.request("POST", "/api/auth/password/reset", {"email": "bob@old.example"})
        mails = sink.wait_for(1)
        token = link_token(mails[0], "reset") if mails else None
        root = s.login("root")[1]["access"]
        bob = s.login("bob")[1]["access"]
        bob_id = json.loads(s.request("GET", "/api/auth/me", token=bob)[2])["id"]
        s.request("PATCH", f"/api/admin/users/{bob_id}", {"email": "bob@new.example"}, token=root)
        used = s.request(
            "POST", "/api/auth/password/reset/confirm",
            {"token": token or "", "new_password": "another-vivid-otter-2024!"},
        )[0]
        report(11, token is not None and used == 400, f"the old address's reset link after the change: {used}")
    finally:
        if s:
            s.stop()
        sink.stop()


# 15. email_verification = required: a starved link, and operators locked out.
def probe_verification_required():
    sink = MailSink.start()
    if sink is None:
        print("skipped   item 15: no aiosmtpd")
        return
    s = None
    try:
        s = Server(sink.config() + 'email_verification = "required"\ntrusted_proxies = ["127.0.0.1"]')
        s.cli("createsuperuser", "--username", "root", "--password-stdin", stdin=PASSWORD + "\n")
        root = s.login("root")[0]
        for i in range(5):
            s.request("POST", "/api/auth/signup",
                      {"username": f"squatter{i}", "password": PASSWORD, "email": "victim@example.com"},
                      headers={"X-Forwarded-For": f"198.51.100.{i}"})
        sink.wait_for(5)
        s.request("POST", "/api/auth/signup",
                  {"username": "victim", "password": PASSWORD, "email": "victim@example.com"},
                  headers={"X-Forwarded-For": "192.0.2.7"})
        mails = sink.wait_for(6)
        refused = s.login("victim")[0]
        mails = sink.wait_for(7, within=5)
        tokens = [link_token(m, "verify") for m in mails]
        # The signup's link (the sixth mail) still works after the refused login.
        verified = s.request("POST", "/api/auth/email/verify", {"token": tokens[5] or ""})[0] if len(tokens) > 5 else None
        after = s.login("victim")[0]
        report(
            15,
            root == 200 and len(mails) >= 6 and verified in (200, 204) and after == 200,
            f"superuser without an address logs in: {root}; the victim's own signup mailed a link: "
            f"{len(mails) >= 6}; a login before clicking ({refused}) left that link working: {verified}; then login {after}",
        )
    finally:
        if s:
            s.stop()
        sink.stop()

def main():
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} not found: cargo build --release")
    for probe in [
        probe_disk_full,
        probe_connections,
        probe_keys,
        probe_throttled_rows,
        probe_timing_and_cost,
        probe_audit_escapes,
        probe_huge_id,
        probe_cli_audit,
        probe_bcrypt_72,
        probe_import_nul,
        probe_staff_rules,
        probe_audit_follow,
        probe_rolled_back_ids,
        probe_reset_multiplied,
        probe_link_after_address_change,
        probe_verification_required,
    ]:
        if ONLY and probe.__name__ not in ONLY:
            continue
        try:
            probe()
        except Exception as e:  # a probe that breaks says so and the others run
            print(f"ERROR     {probe.__name__}: {e}", flush=True)
            RESULTS.append(False)
    print(f"{sum(RESULTS)} of {len(RESULTS)} probes show the finding fixed")
    sys.exit(0 if all(RESULTS) else 1)


if __name__ == "__main__":
    main()
