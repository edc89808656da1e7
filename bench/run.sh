#!/usr/bin/env bash
# Load benchmark against a baseline and peers: release builds of Tessera (on
# fresh SQLite files, and for (f) also on a fresh PostgreSQL database) and of
# bench/baseline (a bare axum + jsonwebtoken server with the same HS256
# secret), and for (f) the refresh of two Python stacks as the tutorials build
# them (bench/peers/), driven over loopback by wrk, Tessera's runs interleaved
# with their references (baseline, Tessera, baseline, Tessera...).
# Prints one table: each scenario's req/s, p50 and p99 latency, its ratio to
# its reference (the baseline or peer run just before it, or Tessera's run of
# (b) or of (f) on SQLite), the target and PASS / FAIL.
#
#   (a) GET /healthz against the baseline's GET /hello           >= 0.90
#   (b) GET /api/auth/me, HS256, one token, against GET /me       >= 0.90
#   (c) GET /api/auth/check, HS256, against (b)                   >= 1.00
#   (d) GET /api/auth/me with ES256, with EdDSA, one token,
#       against the baseline's HS256 GET /me                      >= 0.85
#   (e) (d) with 10,000 distinct tokens round-robin               reported
#   (f) POST /api/token/refresh/ with rotation and blacklisting, each
#       token presented once (bench/refresh.lua: 32 chains, one login each),
#       every answer 200:
#       on SQLite, against FastAPI's stateless refresh (bench/peers/:
#       PyJWT, no database, uvicorn with uvloop and httptools, one worker as
#       `fastapi run` serves it)        >= 1.00 (target 2x) and p99 < 20 ms
#       on PostgreSQL (a scratch database on 127.0.0.1:5432, dropped on
#       exit; SKIPPED when PostgreSQL is unreachable), against SQLite >= 0.50
#       beside them, reported: FastAPI's refresh with --workers 2, and
#       Django + simplejwt doing the same work (rotation + blacklist, stock
#       views, SQLite, gunicorn -w 2 sync workers), each against SQLite's
#   (g) (b) with 1,000,000 blacklisted jtis and 100,000 revoked
#       families loaded at start, against (b)                     >= 0.95
#   (h) (b) while 32 password logins run beside it, against (b)   >= 0.50
#   (i) Tessera's resident memory: idle after one login < 30 MB, after (g)
#       < 300 MB, holding 10,000 idle keep-alive connections < 150 MB
#       (MB = 10^6 bytes, from VmRSS)
#
# Usage: bench/run.sh [--memory] [DURATION_SECONDS]
# With --memory, only (i): its three rows ((g)'s instance loaded and driven
# by wrk for DURATION seconds, as in the full run), each instance's memory
# split into anonymous memory and mapped files (/proc/PID/smaps_rollup);
# about a minute and a half after the build.
# Bounded: every wrk run is a 2 s warm-up then DURATION seconds (default 10),
# 1 thread and 32 connections; about 6 minutes in all at the default on two
# cores. Every server start waits a bounded time. Everything listens on
# 127.0.0.1; servers (the peers with their workers), helpers, the scratch
# PostgreSQL database and the temporary directory are removed on exit. Exits
# 0 when every scenario ran (whether its target passed or not: see the
# table; (f) on PostgreSQL may be SKIPPED), non-zero when one could not run.
# The peers run in a virtual environment of their own, made by this script
# with python3 -m venv and pip (bench/peers/requirements.txt, pinned) the
# first time, then reused: ${XDG_CACHE_HOME:-~/.cache}/tessera-bench-peers.
set -euo pipefail
cd "$(dirname "$0")/.."
memory_only=0
if [ "${1:-}" = --memory ]; then
  memory_only=1
  shift
fi
duration="${1:-10}"
case "$duration" in '' | *[!0-9]*) echo "usage: $0 [--memory] [DURATION_SECONDS]" >&2; exit 2 ;; esac
[ "$duration" -ge 1 ] || { echo "DURATION must be at least 1" >&2; exit 2; }
warmup=2
connections=32
threads=1
idle_count=10000
umask 077

die() { echo "bench/run.sh: $*" >&2; exit 1; }
note() { echo "-- [${SECONDS}s] $*" >&2; }

echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
# Other work on the machine skews every number: say how busy it was.
echo "Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

for tool in curl python3; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi

# The peers of (f), in a virtual environment of their own: made once, and
# again when bench/peers/requirements.txt changes (a copy of it in the
# environment says what was installed).
peers_venv="${XDG_CACHE_HOME:-$HOME/.cache}/tessera-bench-peers"
peers_python="$peers_venv/bin/python"
install_peers() {
  local marker="$peers_venv/bench-requirements.txt"
  if cmp -s bench/peers/requirements.txt "$marker" \
    && "$peers_python" -c 'import fastapi, uvicorn, uvloop, httptools, jwt, django, rest_framework, rest_framework_simplejwt, gunicorn' 2>/dev/null; then
    return
  fi
  echo "installing the peers of (f) (bench/peers/requirements.txt) into $peers_venv, once..." >&2
  mkdir -p "$(dirname "$peers_venv")"
  (
    # One install at a time when two runs start together.
    flock -w 900 9 || die "another install of $peers_venv did not finish"
    if cmp -s bench/peers/requirements.txt "$marker"; then exit 0; fi
    rm -f "$marker"
    timeout 120 python3 -m venv --clear "$peers_venv" || die "python3 -m venv failed"
    timeout 900 "$peers_venv/bin/pip" install --quiet --disable-pip-version-check \
      -r bench/peers/requirements.txt || die "could not install bench/peers/requirements.txt"
    cp bench/peers/requirements.txt "$marker"
  ) 9> "$peers_venv.lock"
}
if [ "$memory_only" = 0 ]; then
  install_peers
  echo "Peers: $("$peers_python" - <<'PY'
import platform
from importlib.metadata import version
names = ["fastapi", "uvicorn", "uvloop", "httptools", "PyJWT", "Django", "djangorestframework",
         "djangorestframework-simplejwt", "gunicorn"]
print(f"Python {platform.python_version()}, " + ", ".join(f"{n} {version(n)}" for n in names))
PY
)"
fi

# (i) holds 10,000 connections: a descriptor each in the helper and in the server.
hard_limit="$(ulimit -Hn)"
if [ "$hard_limit" = unlimited ]; then
  ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
else
  ulimit -n "$hard_limit" 2>/dev/null || true
fi
fd_limit="$(ulimit -n)"
if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt $((idle_count + 100)) ]; then
  idle_count=$((fd_limit - 100))
  echo "Open files limit: $fd_limit (hard limit $hard_limit), below $((10000 + 100)): (i) opens only $idle_count connections"
else
  echo "Open files limit: $fd_limit"
fi

cargo build --release -p tessera-server -p tessera-bench-baseline --quiet
target="${CARGO_TARGET_DIR:-target}"
tessera_bin="$target/release/tessera"
baseline_bin="$target/release/tessera-bench-baseline"
idle_bin="$target/release/idle_connections"

work="$(mktemp -d)"
# Servers (pid), peers (group: each the leader of a process group holding its
# workers) and helpers (helper) running, by name; removed once reaped.
declare -A pid=() group=() helper=() base=()
# (f) on PostgreSQL: a scratch database, created once PostgreSQL answers.
pg_database="tessera_bench_$$"
pg_created=""
# psql_admin ARGS...: psql on the shared server's postgres database, bounded.
psql_admin() {
  PGCONNECT_TIMEOUT=5 timeout 60 psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 5432 -U postgres \
    -d postgres "$@"
}
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local p i
  for p in "${group[@]}"; do
    kill -TERM -- "-$p" 2>/dev/null || true
  done
  for p in "${helper[@]}" "${pid[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${group[@]}"; do
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
  done
  for p in "${helper[@]}" "${pid[@]}" "${group[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [ -n "$pg_created" ]; then
    psql_admin -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null \
      || echo "bench/run.sh: could not drop the database $pg_database" >&2
  fi
  rm -rf "$work"
}
# alive PID: PID runs (a zombie waiting to be reaped does not).
alive() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One secret for the baseline and every HS256 instance of Tessera.
secret="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
password="vivid-otter-canyon-1987!"

# wait_listening NAME SECONDS: the address NAME printed, once it is bound.
wait_listening() {
  local name="$1" seconds="$2" dir="$work/$1" i addr
  for ((i = 0; i < seconds * 10; i++)); do
    grep -q "listening on" "$dir/stdout" 2>/dev/null && break
    kill -0 "${pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  addr="$(sed -n 's/.*listening on //p' "$dir/stdout")"
  if [ -z "$addr" ]; then
    tail -n 20 "$dir/server.log" >&2 || true
    die "$name did not start"
  fi
  base[$name]="http://$addr"
}

start_baseline() {
  mkdir -p "$work/baseline"
  BASELINE_SECRET="$secret" "$baseline_bin" --bind 127.0.0.1:0 \
    > "$work/baseline/stdout" 2> "$work/baseline/server.log" &
  pid[baseline]=$!
  wait_listening baseline 10
}

# start_tessera NAME ALGORITHM [EXTRA_TOML_LINE...]: an instance on a fresh
# SQLite file of its own, or on the database tessera_database[NAME] names.
# HS256 instances sign with the baseline's secret; the others generate their
# key at first start.
declare -A tessera_database=()
start_tessera() {
  local name="$1" algorithm="$2" dir="$work/$1"
  shift 2
  mkdir -p "$dir"
  {
    echo 'bind = "127.0.0.1:0"'
    echo "database_url = \"${tessera_database[$name]:-sqlite://$dir/tessera.db}\""
    echo "algorithm = \"$algorithm\""
    if [ "$algorithm" = HS256 ]; then echo "signing_key = \"$secret\""; fi
    echo 'access_token_lifetime = "1h"'
    echo 'user_rate_limit = "off"'
    echo 'login_rate_limit = "off"'
    # The largest value the setting accepts.
    echo 'max_sessions_per_user = 100000'
    local line
    for line in "$@"; do echo "$line"; done
  } > "$dir/tessera.toml"
  run_tessera "$name" 30
}

# run_tessera NAME SECONDS: (re)start NAME on its existing config and file.
run_tessera() {
  local name="$1" dir="$work/$1"
  : > "$dir/stdout"
  "$tessera_bin" --config "$dir/tessera.toml" serve > "$dir/stdout" 2>> "$dir/server.log" &
  pid[$name]=$!
  wait_listening "$name" "$2"
}

stop() {
  local name="$1" i
  kill "${pid[$name]}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "${pid[$name]}" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "${pid[$name]}" 2>/dev/null || true
  wait "${pid[$name]}" 2>/dev/null || true
  unset "pid[$name]"
}

# free_port: a port on 127.0.0.1 that nothing listens on, for a peer (the
# peers do not print the port they bound).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_peer NAME PORT SECONDS COMMAND...: COMMAND, a peer listening on
# 127.0.0.1:PORT, as the leader of a process group of its own (setsid) so
# that its workers are stopped with it; waits at most SECONDS for it to
# answer HTTP (any status) on /api/token/refresh/.
start_peer() {
  local name="$1" port="$2" seconds="$3" dir="$work/$1" code=000 deadline
  shift 3
  mkdir -p "$dir"
  setsid "$@" > "$dir/stdout" 2> "$dir/server.log" < /dev/null &
  group[$name]=$!
  deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    code="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/token/refresh/" || true)"
    [ "$code" = 000 ] || break
    alive "${group[$name]}" || break
    sleep 0.1
  done
  if [ "$code" = 000 ]; then
    tail -n 20 "$dir/server.log" >&2 || true
    die "$name did not start"
  fi
  [ "$(ps -o pgid= -p "${group[$name]}" | tr -d ' ')" = "${group[$name]}" ] \
    || die "$name does not lead a process group of its own (setsid forked)"
  base[$name]="http://127.0.0.1:$port"
}

# stop_peer NAME: stops NAME and its workers (SIGTERM, SIGKILL after 10 s).
stop_peer() {
  local p="${group[$1]}" i
  kill -TERM -- "-$p" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$p" || break
    sleep 0.1
  done
  kill -KILL -- "-$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "group[$1]"
}

# start_fastapi NAME WORKERS: FastAPI's stateless refresh
# (bench/peers/fastapi_refresh.py) served by uvicorn as `fastapi run` serves
# it (uvloop, httptools, the access log on), in WORKERS processes. Checks
# that it refreshes fastapi_token and refuses a broken one.
start_fastapi() {
  local name="$1" port out
  port="$(free_port)"
  start_peer "$name" "$port" 30 env PEER_SECRET="$secret" PYTHONDONTWRITEBYTECODE=1 \
    "$peers_python" -m uvicorn --app-dir "$PWD/bench/peers" fastapi_refresh:app \
    --host 127.0.0.1 --port "$port" --workers "$2"
  out="$(post "${base[$name]}/api/token/refresh/" -d "{\"refresh\":\"$fastapi_token\"}")"
  [ -n "$(field access <<<"$out")" ] || die "$name: the refresh failed: $out"
  [ "$(status_of -H 'Content-Type: application/json' -d "{\"refresh\":\"x$fastapi_token\"}" \
    "${base[$name]}/api/token/refresh/")" = 401 ] || die "$name accepts a broken refresh token"
}

# start_django: Django + simplejwt (bench/peers/djangopeer) on a fresh SQLite
# database, migrated, with $connections users and a refresh token each in
# $work/f.django.warmup.tokens and $work/f.django.run.tokens, served by
# gunicorn with 2 sync workers. Checks one login through /api/token/ and that
# its refresh token is rotated once and then refused.
start_django() {
  local dir="$work/django" port out token
  mkdir -p "$dir"
  local with_env=(env PEER_SECRET="$secret" PEER_DATABASE="$dir/db.sqlite3"
    DJANGO_SETTINGS_MODULE=djangopeer.settings PYTHONPATH="$PWD/bench/peers" PYTHONDONTWRITEBYTECODE=1)
  timeout 120 "${with_env[@]}" "$peers_python" -m django migrate --noinput -v 0 > "$dir/setup.log" 2>&1 \
    || { cat "$dir/setup.log" >&2; die "django: migrate failed"; }
  timeout 120 "${with_env[@]}" "$peers_python" bench/peers/django_chains.py "$connections" "$password" \
    "$work/f.django.warmup.tokens" "$work/f.django.run.tokens" >> "$dir/setup.log" 2>&1 \
    || { cat "$dir/setup.log" >&2; die "django: the users and their refresh tokens were not made"; }
  port="$(free_port)"
  start_peer django "$port" 60 "${with_env[@]}" "$peers_venv/bin/gunicorn" --workers 2 \
    --worker-class sync --bind "127.0.0.1:$port" --no-control-socket djangopeer.wsgi
  out="$(post "${base[django]}/api/token/" -d "{\"username\":\"bench0\",\"password\":\"$password\"}")"
  token="$(field refresh <<<"$out")"
  [ -n "$token" ] || die "django: the login failed: $out"
  out="$(post "${base[django]}/api/token/refresh/" -d "{\"refresh\":\"$token\"}")"
  [ -n "$(field refresh <<<"$out")" ] || die "django: the refresh did not rotate: $out"
  [ "$(status_of -H 'Content-Type: application/json' -d "{\"refresh\":\"$token\"}" \
    "${base[django]}/api/token/refresh/")" = 401 ] || die "django: a rotated refresh token is accepted again"
}

# postgres_database: creates the scratch database of (f) on PostgreSQL, or
# sets pg_skip to why it cannot.
postgres_database() {
  pg_skip=""
  if ! command -v psql >/dev/null; then
    pg_skip="psql not found"
  elif ! psql_admin -c 'SELECT 1' > /dev/null 2> "$work/psql.err"; then
    pg_skip="PostgreSQL unreachable at 127.0.0.1:5432: $(head -n 1 "$work/psql.err")"
  else
    pg_created=1
    psql_admin -c "CREATE DATABASE $pg_database" > /dev/null 2> "$work/psql.err" \
      || pg_skip="could not create the database $pg_database: $(head -n 1 "$work/psql.err")"
  fi
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/${pid[$1]}/status"; }
# rss_parts NAME: NAME's resident memory, split into anonymous memory (heap,
# thread stacks) and mapped files (the binary's code and data, shared
# libraries), in MB.
rss_parts() {
  awk '/^Rss:/ {rss = $2} /^Anonymous:/ {anon = $2}
    END { printf "%.1f MB resident: %.1f MB anonymous (heap, stacks), %.1f MB mapped files (code)", rss * 1.024e-3, anon * 1.024e-3, (rss - anon) * 1.024e-3 }' \
    "/proc/${pid[$1]}/smaps_rollup"
}

post() { curl -s --max-time 30 -H 'Content-Type: application/json' "$@"; }
field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p"; }
status_of() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"; }

# signup NAME USERNAME: prints the new user's id.
signup() {
  local out
  out="$(post "${base[$1]}/api/auth/signup" -d "{\"username\":\"$2\",\"password\":\"$password\"}")"
  sed -n 's/.*"id" *: *\([0-9]*\).*/\1/p' <<<"$out" | grep . || die "$1: signup of $2 failed: $out"
}

# login NAME USERNAME: sets access and refresh.
login() {
  local out
  out="$(post "${base[$1]}/api/token/" -d "{\"username\":\"$2\",\"password\":\"$password\"}")"
  access="$(field access <<<"$out")"
  refresh="$(field refresh <<<"$out")"
  if [ -z "$access" ] || [ -z "$refresh" ]; then die "$1: login of $2 failed: $out"; fi
}

# refresh_tokens NAME USERNAME COUNT FILE: COUNT logins, a refresh token a line.
refresh_tokens() {
  local i
  : > "$4"
  for ((i = 0; i < $3; i++)); do
    login "$1" "$2"
    echo "$refresh" >> "$4"
  done
}

# mint_access NAME REFRESH COUNT FILE: COUNT distinct access tokens from one
# refresh token (no rotation: each refresh answers a new access token and
# costs no password hash), over one keep-alive connection.
mint_access() {
  python3 - "${base[$1]#http://}" "$2" "$3" "$4" <<'PY'
import http.client, json, sys
addr, refresh, count, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
conn = http.client.HTTPConnection(addr, timeout=30)
body = json.dumps({"refresh": refresh})
tokens = []
for _ in range(count):
    conn.request("POST", "/api/token/refresh/", body, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 200:
        sys.exit(f"refresh answered {answer.status}: {data[:200]!r}")
    tokens.append(json.loads(data)["access"])
if len(set(tokens)) != count:
    sys.exit(f"only {len(set(tokens))} distinct tokens of {count}")
with open(path, "w") as f:
    f.write("\n".join(tokens) + "\n")
PY
}

# load_revocations FILE USER_ID: 1,000,000 blacklisted refresh tokens and
# 100,000 revoked families of USER_ID, expiring tomorrow, written into FILE.
load_revocations() {
  python3 - "$1" "$2" <<'PY'
import os, sqlite3, sys, time
path, user_id = sys.argv[1], int(sys.argv[2])
now = int(time.time())
until = now + 86400
db = sqlite3.connect(path)
db.execute("PRAGMA synchronous = OFF")
with db:
    db.executemany(
        "INSERT INTO refresh_tokens (jti, user_id, family_id, issued_at, expires_at, blacklisted_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ((os.urandom(16).hex(), user_id, os.urandom(16).hex(), now, until, now) for _ in range(1_000_000)))
    db.executemany(
        "INSERT INTO revoked_families (family_id, user_id, revoked_at, expires_at) VALUES (?, ?, ?, ?)",
        ((os.urandom(16).hex(), user_id, now, until) for _ in range(100_000)))
blacklisted = db.execute(
    "SELECT COUNT(*) FROM refresh_tokens WHERE blacklisted_at IS NOT NULL AND expires_at >= ?", (now,)).fetchone()[0]
families = db.execute("SELECT COUNT(*) FROM revoked_families WHERE expires_at >= ?", (now,)).fetchone()[0]
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
if blacklisted < 1_000_000 or families < 100_000:
    sys.exit(f"only {blacklisted} blacklisted tokens and {families} revoked families")
PY
}

# idle_connections_part: (i) on a fresh instance, one login, then idle
# keep-alive connections, all from one address: its share of the slots is
# raised with the slots. Sets rss_idle_fresh, rss_connections, opened and
# answered.
idle_connections_part() {
  local i
  start_tessera idle HS256 "max_connections = $((idle_count + 1000))" \
    "max_connections_per_client = $((idle_count + 1000))"
  signup idle bench >/dev/null
  login idle bench
  sleep 1
  rss_idle_fresh="$(rss_kib idle)"
  note "i: opening $idle_count connections"
  "$idle_bin" "${base[idle]#http://}" "$idle_count" 10 > "$work/idle.out" 2> "$work/idle.err" &
  helper[idle]=$!
  for ((i = 0; i < 1200; i++)); do
    grep -q '^ready' "$work/idle.out" 2>/dev/null && break
    kill -0 "${helper[idle]}" 2>/dev/null || break
    sleep 0.1
  done
  grep -q '^ready' "$work/idle.out" || { cat "$work/idle.err" >&2; die "i: the connections were not opened"; }
  sleep 2
  rss_connections="$(rss_kib idle)"
  note "i: with the connections: $(rss_parts idle)"
  opened="$(awk '$1 == "opened" {print $2}' "$work/idle.out")"
  answered="$(awk '$1 == "answered_200" {print $2}' "$work/idle.out")"
  helper_wait idle || note "i: $(cat "$work/idle.err")"
  [ "${opened:-0}" -gt 0 ] || die "i: no connection was opened"
}

# restart_with_revocations: (g)'s start: stops the HS256 instance, adds
# 1,000,000 blacklisted refresh tokens and 100,000 revoked families to its
# file and starts it again (it loads them). Sets g_start (seconds).
restart_with_revocations() {
  stop hs
  note "g: writing 1,000,000 blacklisted jtis and 100,000 revoked families"
  load_revocations "$work/hs/tessera.db" "$user_id"
  g_start="$(date +%s.%N)"
  run_tessera hs 300
  g_start="$(awk -v a="$g_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  note "g: restarted in $g_start s"
  [ "$(status_of "${base[hs]}/api/auth/me" "${auth[@]}")" = 200 ] \
    || die "g: the token of (b) is refused after the restart"
}

# memory_rows: the three rows of (i).
memory_rows() {
  # mem_row LABEL KIB LIMIT_MB
  mem_row() {
    local mb
    mb="$(awk -v k="$2" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }')"
    row "$1" "$mb" "" "" "" "" "" "< $3 MB" \
      "$(awk -v k="$2" -v l="$3" 'BEGIN { print (k * 1024 < l * 1e6 ? "PASS" : "FAIL") }')"
  }
  mem_row "(i) Tessera RSS idle, after one login" "$rss_idle" 30
  mem_row "(i) Tessera RSS after (g)" "$rss_after_g" 300
  mem_row "(i) Tessera RSS, $opened idle connections" "$rss_connections" 150
  if [ "$opened" -lt 10000 ] || [ "$answered" -lt "$opened" ]; then
    rows[-1]="${rows[-1]% *} FAIL (only $opened opened, $answered answered 200)"
  fi
}

# wrk_run SECONDS ARGS...: wrk, 1 thread, 32 connections, with latencies.
wrk_run() {
  local seconds="$1"
  shift
  timeout $((seconds + 30)) wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "$@"
}

# Latency as wrk prints it (us, ms, s) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
    printf "%.2f", n
  }'
}

# parse_wrk FILE: sets r_rps r_p50 r_p99 (ms) r_bad (non-2xx and socket
# errors), r_socket (socket errors alone) and, with bench/refresh.lua, r_ok
# r_failed r_okps.
parse_wrk() {
  local p50 p99
  read -r r_rps p50 p99 r_bad r_socket r_ok r_failed r_okps < <(awk '
    /^Requests\/sec:/ {rps = $2}
    $1 == "50%" {p50 = $2}
    $1 == "99%" {p99 = $2}
    /Non-2xx or 3xx responses:/ {bad += $NF}
    /Socket errors:/ {gsub(/,/, ""); socket = $4 + $6 + $8 + $10; bad += socket}
    /^refresh_ok / {ok = $2}
    /^refresh_failed / {failed = $2}
    /^refresh_ok_per_s / {okps = $2}
    END {print (rps == "" ? "-" : rps), (p50 == "" ? "-" : p50), (p99 == "" ? "-" : p99),
               bad + 0, socket + 0, ok + 0, failed + 0, (okps == "" ? 0 : okps)}' "$1")
  if [ "$r_rps" = - ] || [ "$p99" = - ]; then cat "$1" >&2; die "wrk gave no result ($1)"; fi
  r_p50="$(to_ms "$p50")"
  r_p99="$(to_ms "$p99")"
}

# measure KEY ARGS...: a warm-up, then the measured run; KEY names its output.
runs=0
measure() {
  local key="$1"
  shift
  runs=$((runs + 1))
  wrk_run "$warmup" "$@" > "$work/$key.warmup" || { cat "$work/$key.warmup" >&2; die "wrk failed ($key warm-up)"; }
  wrk_run "$duration" "$@" > "$work/$key.wrk" || { cat "$work/$key.wrk" >&2; die "wrk failed ($key)"; }
  parse_wrk "$work/$key.wrk"
  rps[$key]="$r_rps" p50[$key]="$r_p50" p99[$key]="$r_p99" bad[$key]="$r_bad"
  note "$key: $r_rps req/s, p50 ${r_p50} ms, p99 ${r_p99} ms, errors $r_bad"
}
declare -A rps=() p50=() p99=() bad=()

# measure_chains KEY URL PREFIX [WRK_OPTION...]: refreshes with rotation,
# each token presented once (bench/refresh.lua), a warm-up on the chains of
# $work/PREFIX.warmup.tokens, then the measured run on fresh ones
# ($work/PREFIX.run.tokens). Only refreshes answered 200 count: sets
# rps[KEY] (those a second), ok[KEY] and failed[KEY] (the other answers);
# bad[KEY] is failed[KEY] plus socket errors.
measure_chains() {
  local key="$1" url="$2" prefix="$3"
  shift 3
  runs=$((runs + 1))
  wrk_run "$warmup" "$@" -s bench/refresh.lua "$url" -- "$work/$prefix.warmup.tokens" "$threads" \
    > "$work/$key.warmup" || { cat "$work/$key.warmup" >&2; die "wrk failed ($key warm-up)"; }
  wrk_run "$duration" "$@" -s bench/refresh.lua "$url" -- "$work/$prefix.run.tokens" "$threads" \
    > "$work/$key.wrk" || { cat "$work/$key.wrk" >&2; die "wrk failed ($key)"; }
  parse_wrk "$work/$key.wrk"
  rps[$key]="$r_okps" p50[$key]="$r_p50" p99[$key]="$r_p99" bad[$key]="$((r_failed + r_socket))"
  ok[$key]="$r_ok" failed[$key]="$r_failed"
  note "$key: $r_ok refreshes answered 200 ($r_okps/s), $r_failed did not, $r_socket socket errors; p50 ${r_p50} ms, p99 ${r_p99} ms"
}
declare -A ok=() failed=()

# helper_wait NAME: waits for helper NAME; fails as it did.
helper_wait() {
  local status=0
  wait "${helper[$1]}" || status=$?
  unset "helper[$1]"
  return "$status"
}

# The table, printed at the end: one row per run, then the memory rows.
rows=()
columns='%-50s %10s %8s %8s %6s %6s %-12s %-22s %s'
# shellcheck disable=SC2059  # the format is ours
row() { rows+=("$(printf "$columns" "$@")"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
# verdict RATIO MIN ERRORS...: PASS when RATIO >= MIN and no run had errors.
verdict() {
  local r="$1" min="$2" e
  shift 2
  for e in "$@"; do [ "$e" -eq 0 ] || { echo "FAIL (errors)"; return; }; done
  if at_least "$r" "$min"; then echo PASS; else echo FAIL; fi
}
baseline_row() {
  row "$1" "${rps[$2]}" "${p50[$2]}" "${p99[$2]}" "${bad[$2]}" "" "" "" "$([ "${bad[$2]}" -eq 0 ] || echo "FAIL (errors)")"
}
# tessera_row LABEL KEY REFERENCE_KEY REFERENCE_NAME MIN
tessera_row() {
  local r
  r="$(ratio "${rps[$2]}" "${rps[$3]}")"
  row "$1" "${rps[$2]}" "${p50[$2]}" "${p99[$2]}" "${bad[$2]}" "$r" "$4" ">= $5" \
    "$(verdict "$r" "$5" "${bad[$2]}" "${bad[$3]}")"
}

start_baseline
note "baseline at ${base[baseline]}"

# The HS256 instance of (a), (b), (c), (h) and (g).
start_tessera hs HS256
user_id="$(signup hs bench)"
login hs bench
hs_access="$access" hs_refresh="$refresh"
[ "$(status_of "${base[hs]}/api/auth/me" -H "Authorization: Bearer $hs_access")" = 200 ] \
  || die "Tessera refuses its own access token"
[ "$(status_of "${base[baseline]}/me" -H "Authorization: Bearer $hs_access")" = 200 ] \
  || die "the baseline refuses Tessera's HS256 access token"
[ "$(status_of "${base[baseline]}/me" -H "Authorization: Bearer x${hs_access}")" = 401 ] \
  || die "the baseline accepts a broken token"
sleep 1
rss_idle="$(rss_kib hs)"
auth=(-H "Authorization: Bearer $hs_access")

if [ "$memory_only" = 1 ]; then
  note "i: after one login: $(rss_parts hs)"
  idle_connections_part
  stop idle
  restart_with_revocations
  measure g.tessera "${auth[@]}" "${base[hs]}/api/auth/me"
  rss_after_g="$(rss_kib hs)"
  note "g: $(rss_parts hs)"
  stop hs
  memory_rows
  echo "Tessera's resident memory (bench/run.sh --memory; (g) after ${warmup}s + ${duration}s of wrk -t$threads -c$connections)"
  # shellcheck disable=SC2059  # the format is ours
  printf "$columns\n" scenario RSS "" "" "" "" "" target result
  printf '%s\n' "${rows[@]}"
  echo "(g) restart with the rows loaded: ${g_start} s. (i) the instance of the idle connections was at $(awk -v k="$rss_idle_fresh" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }') before them; the baseline at $(awk -v k="$(rss_kib baseline)" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }')."
  exit 0
fi
signup hs loader >/dev/null

# (a), (b), (c)
measure a.base "${base[baseline]}/hello"
measure a.tessera "${base[hs]}/healthz"
measure b.base "${auth[@]}" "${base[baseline]}/me"
measure b.tessera "${auth[@]}" "${base[hs]}/api/auth/me"
measure c.base "${auth[@]}" "${base[baseline]}/me"
measure c.tessera "${auth[@]}" "${base[hs]}/api/auth/check"

# (h): (b) with 32 connections of password logins beside it, for as long.
measure h.base "${auth[@]}" "${base[baseline]}/me"
# A login waits its turn for a password hash: a longer timeout than wrk's 2 s.
logins=(--timeout 10s -s bench/login.lua "${base[hs]}" -- loader "$password")
wrk_run "$warmup" "${logins[@]}" > "$work/h.logins.warmup" &
helper[logins]=$!
wrk_run "$warmup" "${auth[@]}" "${base[hs]}/api/auth/me" > /dev/null || die "wrk failed (h warm-up)"
helper_wait logins || die "wrk failed (h logins warm-up)"
wrk_run "$duration" "${logins[@]}" > "$work/h.logins.wrk" &
helper[logins]=$!
wrk_run "$duration" "${auth[@]}" "${base[hs]}/api/auth/me" > "$work/h.tessera.wrk" || die "wrk failed (h)"
helper_wait logins || die "wrk failed (h logins)"
runs=$((runs + 1))
parse_wrk "$work/h.tessera.wrk"
rps[h.tessera]="$r_rps" p50[h.tessera]="$r_p50" p99[h.tessera]="$r_p99" bad[h.tessera]="$r_bad"
parse_wrk "$work/h.logins.wrk"
rps[h.logins]="$r_rps" p50[h.logins]="$r_p50" p99[h.logins]="$r_p99" bad[h.logins]="$r_bad"
note "h: /api/auth/me ${rps[h.tessera]} req/s beside ${rps[h.logins]} logins/s (errors ${bad[h.logins]})"

# 10,000 HS256 tokens for the baseline's runs of (e).
mint_access hs "$hs_refresh" 10000 "$work/hs.tokens" || die "could not mint the HS256 tokens"

# (d) and (e): an ES256 and an EdDSA instance, keys generated at start.
for alg in ES256 EdDSA; do
  start_tessera "$alg" "$alg"
  signup "$alg" bench >/dev/null
  login "$alg" bench
  declare "access_$alg=$access"
  [ "$(status_of "${base[$alg]}/api/auth/me" -H "Authorization: Bearer $access")" = 200 ] \
    || die "$alg: Tessera refuses its own access token"
  note "$alg: minting 10,000 access tokens"
  mint_access "$alg" "$refresh" 10000 "$work/$alg.tokens" || die "could not mint the $alg tokens"
done
for alg in ES256 EdDSA; do
  token_var="access_$alg"
  measure "d.$alg.base" "${auth[@]}" "${base[baseline]}/me"
  measure "d.$alg" -H "Authorization: Bearer ${!token_var}" "${base[$alg]}/api/auth/me"
done
for alg in ES256 EdDSA; do
  measure "e.$alg.base" -s bench/tokens.lua "${base[baseline]}/me" -- "$work/hs.tokens"
  measure "e.$alg" -s bench/tokens.lua "${base[$alg]}/api/auth/me" -- "$work/$alg.tokens"
done
stop ES256
stop EdDSA

# (f): refresh with rotation and blacklisting, each token once
# (bench/refresh.lua), on SQLite and on PostgreSQL, beside the peers. All
# are started and their chains made first, then the runs follow one another:
# the baseline, FastAPI (1 worker), Tessera on SQLite, on PostgreSQL, then
# FastAPI (2 workers) and Django + simplejwt.
rotation=('rotate_refresh_tokens = true' 'blacklist_after_rotation = true')
start_tessera rotation HS256 "${rotation[@]}"
signup rotation bench >/dev/null
note "f: 2 x $connections logins for the refresh chains on SQLite"
refresh_tokens rotation bench "$connections" "$work/f.warmup.tokens"
refresh_tokens rotation bench "$connections" "$work/f.run.tokens"
postgres_database
if [ -z "$pg_skip" ]; then
  tessera_database[pg]="postgres://postgres@127.0.0.1:5432/$pg_database"
  start_tessera pg HS256 "${rotation[@]}"
  signup pg bench >/dev/null
  note "f: 2 x $connections logins for the refresh chains on PostgreSQL"
  refresh_tokens pg bench "$connections" "$work/f.pg.warmup.tokens"
  refresh_tokens pg bench "$connections" "$work/f.pg.run.tokens"
else
  note "f: PostgreSQL SKIPPED: $pg_skip"
fi
# FastAPI's refresh token, as its login would answer it; presented every time.
fastapi_token="$(PEER_SECRET="$secret" PYTHONDONTWRITEBYTECODE=1 timeout 60 \
  "$peers_python" bench/peers/fastapi_refresh.py bench)" || die "could not make FastAPI's refresh token"
start_fastapi fastapi 1
start_fastapi fastapi2 2
note "f: Django + simplejwt: migrate, $connections users"
start_django
note "f: peers at ${base[fastapi]} (1 worker), ${base[fastapi2]} (2 workers), ${base[django]} (Django)"
measure f.base "${auth[@]}" "${base[baseline]}/me"
measure f.fastapi -s bench/refresh_same.lua "${base[fastapi]}" -- "$fastapi_token"
measure_chains f "${base[rotation]}" f
if [ -z "$pg_skip" ]; then measure_chains f.pg "${base[pg]}" f.pg; fi
measure f.fastapi2 -s bench/refresh_same.lua "${base[fastapi2]}" -- "$fastapi_token"
# gunicorn's sync workers take one request at a time each: the 32 connections
# queue, so a longer timeout than wrk's 2 s.
measure_chains f.django "${base[django]}" f.django --timeout 10s
stop rotation
if [ -z "$pg_skip" ]; then
  stop pg
  psql_admin -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" > /dev/null \
    || die "could not drop the database $pg_database"
  pg_created=""
fi
for name in fastapi fastapi2 django; do stop_peer "$name"; done

# (g): stop the HS256 instance, add 1,000,000 blacklisted refresh tokens and
# 100,000 revoked families to its file, start it again (it loads them).
restart_with_revocations
measure g.base "${auth[@]}" "${base[baseline]}/me"
measure g.tessera "${auth[@]}" "${base[hs]}/api/auth/me"
rss_after_g="$(rss_kib hs)"
stop hs

idle_connections_part
rss_baseline="$(rss_kib baseline)"

# The table.
baseline_row "(a) baseline GET /hello" a.base
tessera_row "(a) Tessera GET /healthz" a.tessera a.base "(a) baseline" 0.90
baseline_row "(b) baseline GET /me" b.base
tessera_row "(b) Tessera GET /api/auth/me HS256" b.tessera b.base "(b) baseline" 0.90
baseline_row "(c) baseline GET /me" c.base
tessera_row "(c) Tessera GET /api/auth/check HS256" c.tessera b.tessera "(b) Tessera" 1.00
for alg in ES256 EdDSA; do
  baseline_row "(d) baseline GET /me HS256" "d.$alg.base"
  tessera_row "(d) Tessera GET /api/auth/me $alg" "d.$alg" "d.$alg.base" "(d) baseline" 0.85
done
for alg in ES256 EdDSA; do
  baseline_row "(e) baseline GET /me HS256, 10,000 tokens" "e.$alg.base"
  row "(e) Tessera /api/auth/me $alg, 10,000 tokens" "${rps[e.$alg]}" "${p50[e.$alg]}" "${p99[e.$alg]}" \
    "${bad[e.$alg]}" "$(ratio "${rps[e.$alg]}" "${rps[e.$alg.base]}")" "(e) baseline" "reported" \
    "$([ "${bad[e.$alg]}" -eq 0 ] && echo REPORTED || echo "REPORTED (errors)")"
done
baseline_row "(f) baseline GET /me" f.base
baseline_row "(f) FastAPI refresh, stateless, uvicorn 1 worker" f.fastapi
f_ratio="$(ratio "${rps[f]}" "${rps[f.fastapi]}")"
f_result="$(verdict "$f_ratio" 1.00 "${bad[f]}" "${bad[f.fastapi]}")"
if [ "$f_result" = PASS ] && ! awk -v p="${p99[f]}" 'BEGIN { exit !(p < 20) }'; then f_result="FAIL (p99)"; fi
row "(f) Tessera refresh, rotation + blacklist, SQLite" "${rps[f]}" "${p50[f]}" "${p99[f]}" "${bad[f]}" \
  "$f_ratio" "(f) FastAPI" ">= 1.00, p99 < 20 ms" "$f_result"
if [ -z "$pg_skip" ]; then
  tessera_row "(f) Tessera refresh, the same on PostgreSQL" f.pg f "(f) SQLite" 0.50
else
  row "(f) Tessera refresh, the same on PostgreSQL" - - - - - "(f) SQLite" ">= 0.50" "SKIPPED ($pg_skip)"
fi
# peer_row LABEL KEY: a peer beside (f) on SQLite, reported.
peer_row() {
  row "$1" "${rps[$2]}" "${p50[$2]}" "${p99[$2]}" "${bad[$2]}" "$(ratio "${rps[$2]}" "${rps[f]}")" \
    "(f) SQLite" "reported" "$(peer_result "$2")"
}
# peer_result KEY: REPORTED, and what went wrong if something did.
peer_result() {
  if [ "${bad[$1]}" -ne 0 ]; then
    echo "REPORTED (errors)"
  elif ! at_least "${rps[$1]}" 0.01; then
    echo "REPORTED (no answer in ${duration}s)"
  else
    echo REPORTED
  fi
}
peer_row "(f) FastAPI refresh, stateless, uvicorn 2 workers" f.fastapi2
peer_row "(f) Django + simplejwt, rotation + blacklist" f.django
baseline_row "(g) baseline GET /me" g.base
tessera_row "(g) Tessera /api/auth/me + 1M jtis, 100k families" g.tessera b.tessera "(b) Tessera" 0.95
baseline_row "(h) baseline GET /me" h.base
tessera_row "(h) Tessera /api/auth/me + 32 logins" h.tessera b.tessera "(b) Tessera" 0.50
row "(h) the logins beside it: POST /api/token/" "${rps[h.logins]}" "${p50[h.logins]}" "${p99[h.logins]}" \
  "${bad[h.logins]}" "" "" "" ""
memory_rows

echo "Tessera against bench/baseline and, in (f), the peers of bench/peers/: wrk -t$threads -c$connections, ${warmup}s warm-up + ${duration}s per run, loopback, $runs runs interleaved"
# shellcheck disable=SC2059  # the format is ours
printf "$columns\n" scenario req/s "p50 ms" "p99 ms" errors ratio "of" target result
printf '%s\n' "${rows[@]}"
pg_counts="skipped"
if [ -z "$pg_skip" ]; then pg_counts="${ok[f.pg]} answered 200, ${failed[f.pg]} did not"; fi
echo "errors: non-2xx answers and socket errors. The refreshes with rotation count only those answered 200: (f) SQLite ${ok[f]} answered 200, ${failed[f]} did not; PostgreSQL $pg_counts; Django + simplejwt ${ok[f.django]} answered 200, ${failed[f.django]} did not."
# Done-when 1 of issue 34, in one line: Tessera's refresh against each peer.
pg_ratio="SKIPPED ($pg_skip)"
if [ -z "$pg_skip" ]; then pg_ratio="$(ratio "${rps[f.pg]}" "${rps[f]}")x SQLite's (target >= 0.5)"; fi
echo "(f) Tessera's refresh with rotation + blacklist on SQLite is ${f_ratio}x FastAPI's stateless refresh on 1 worker (target >= 1.0, aim 2x; p99 ${p99[f]} ms, target < 20 ms)," \
  "$(ratio "${rps[f]}" "${rps[f.fastapi2]}")x on 2 workers, $(ratio "${rps[f]}" "${rps[f.django]}")x Django + simplejwt (gunicorn -w 2)," \
  "$(ratio "${rps[f]}" "${rps[b.tessera]}")x (b); on PostgreSQL $pg_ratio."
echo "(g) restart with the rows loaded: ${g_start} s. (i) the instance of the idle connections was at $(awk -v k="$rss_idle_fresh" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }') before them; the baseline at $(awk -v k="$rss_baseline" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }') at the end."
# The same ratios against (b), each divided first by the baseline run just
# before it: what is left if the machine got faster or slower in between.
awk -v b="$(ratio "${rps[b.tessera]}" "${rps[b.base]}")" \
  -v c="$(ratio "${rps[c.tessera]}" "${rps[c.base]}")" -v f="$(ratio "${rps[f]}" "${rps[f.base]}")" \
  -v g="$(ratio "${rps[g.tessera]}" "${rps[g.base]}")" -v h="$(ratio "${rps[h.tessera]}" "${rps[h.base]}")" 'BEGIN {
  printf "Against (b), each run first divided by its own baseline run (drift removed): (c) %.3f, (f) %.3f, (g) %.3f, (h) %.3f.\n", c / b, f / b, g / b, h / b
}'
# Warnings and errors the servers logged (request lines are INFO): Tessera's,
# uvicorn's, gunicorn's and Python's own.
problems=' (WARN|ERROR) |^(WARNING|ERROR|CRITICAL):|\[(WARNING|ERROR|CRITICAL)\]|^Traceback|Internal Server Error'
for log in "$work"/*/server.log; do
  name="$(basename "$(dirname "$log")")"
  count="$(grep -cE "$problems" "$log" || true)"
  if [ "$count" -gt 0 ]; then
    echo "$name logged $count warnings or errors, the first:"
    grep -E -m 3 "$problems" "$log" | cut -c1-300
  fi
done
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); the whole run took ${SECONDS} s."
# The baseline's runs of GET /me with one token show how steady the machine was.
awk -v list="${rps[b.base]} ${rps[c.base]} ${rps[d.ES256.base]} ${rps[d.EdDSA.base]} ${rps[f.base]} ${rps[g.base]} ${rps[h.base]}" 'BEGIN {
  n = split(list, v, " "); min = max = v[1]
  for (i = 2; i <= n; i++) { if (v[i] < min) min = v[i]; if (v[i] > max) max = v[i] }
  printf "The %d baseline runs of GET /me with one token: %.0f to %.0f req/s (max/min %.3f).\n", n, min, max, max / min
}'
exit 0
