#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: steady on a
# noisy machine where req/s are not. Starts Tessera (release build, a fresh
# SQLite file, HS256) and bench/baseline under callgrind in turn, sends each
# 300 requests to warm up, then counts 2,000 more over one keep-alive
# connection:
#
#   Tessera GET /healthz        against the baseline's GET /hello
#   Tessera GET /api/auth/me    against the baseline's GET /me (one token)
#
# Usage: bench/instructions.sh. Needs valgrind (installed from Debian when
# missing) and python3. Everything listens on 127.0.0.1; bounded (about two
# minutes after the build).
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "bench/instructions.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is needed"
if ! command -v valgrind >/dev/null; then
  echo "installing valgrind (Debian package)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release -p tessera-server -p tessera-bench-baseline --quiet
target="${CARGO_TARGET_DIR:-target}/release"
work="$(mktemp -d)"
vg=""
cleanup() { [ -z "$vg" ] || kill "$vg" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
secret="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
export BASELINE_SECRET="$secret"
password="vivid-otter-canyon-1987!"
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# client PORT PATH COUNT [TOKEN]: COUNT GETs over one connection, each a 200.
client() {
  python3 - "$@" <<'PY'
import http.client, sys
port, path, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
headers = {"Authorization": "Bearer " + sys.argv[4]} if len(sys.argv) > 4 else {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(count):
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"{path} answered {answer.status}")
PY
}

# Tessera computes a dummy password hash at start, on a thread of its own
# (docs: an unknown user's login takes as long as a wrong password). Under
# callgrind that Argon2 hash is slow enough to land in the counted window
# now and then (about 55,000 more per request); a login of an unknown user
# waits for it, so counting starts once it is done.
settle_tessera() {
  curl -s -o /dev/null -H 'Content-Type: application/json' "http://127.0.0.1:$1/api/token/" \
    -d '{"username":"nobody-here","password":"no-such-password-1987"}'
}

# count NAME PORT PATH TOKEN SETTLE -- COMMAND...: prints instructions per
# request; SETTLE (a command taking the port, or "") runs before the warm-up.
count() {
  local name="$1" port="$2" path="$3" token="$4" settle="$5" i total
  shift 6
  valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg.%p" "$@" \
    > "$work/$name.out" 2> "$work/$name.err" &
  vg=$!
  for ((i = 0; i < 300; i++)); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.2
  done
  [ -z "$settle" ] || "$settle" "$port"
  client "$port" "$path" 300 $token
  callgrind_control -z "$vg" > /dev/null 2>&1
  client "$port" "$path" 2000 $token
  callgrind_control -d "$vg" > /dev/null 2>&1
  kill "$vg"; wait "$vg" 2>/dev/null || true; vg=""
  total="$(callgrind_annotate "$(ls "$work/$name".cg.*.1 | head -n 1)" 2>/dev/null \
    | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)"
  [ -n "$total" ] || die "$name: no count"
  echo "$((total / 2000))"
}

# A Tessera instance to sign up on and log in to (outside valgrind: Argon2 is slow there).
tport="$(port_of)"
cat > "$work/tessera.toml" <<TOML
bind = "127.0.0.1:$tport"
database_url = "sqlite://$work/tessera.db"
algorithm = "HS256"
signing_key = "$secret"
access_token_lifetime = "1h"
TOML
"$target/tessera" --config "$work/tessera.toml" serve > "$work/setup.out" 2> "$work/setup.err" &
setup=$!
for ((i = 0; i < 100; i++)); do grep -q "listening on" "$work/setup.out" && break; sleep 0.1; done
body="{\"username\":\"bench\",\"password\":\"$password\"}"
curl -s -o /dev/null -H 'Content-Type: application/json' "http://127.0.0.1:$tport/api/auth/signup" -d "$body"
token="$(curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$tport/api/token/" -d "$body" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access"])')"
kill "$setup"; wait "$setup" 2>/dev/null || true
[ -n "$token" ] || die "no access token"

bport="$(port_of)"
baseline=("$target/tessera-bench-baseline" --bind "127.0.0.1:$bport")
tessera=("$target/tessera" --config "$work/tessera.toml" serve)
hello="$(count hello "$bport" /hello "" "" -- "${baseline[@]}")"
healthz="$(count healthz "$tport" /healthz "" settle_tessera -- "${tessera[@]}")"
base_me="$(count base-me "$bport" /me "$token" "" -- "${baseline[@]}")"
me="$(count me "$tport" /api/auth/me "$token" settle_tessera -- "${tessera[@]}")"
printf '%-40s %12s %12s %8s\n' "instructions per request" Tessera baseline ratio
printf '%-40s %12s %12s %8s\n' "GET /healthz (baseline GET /hello)" "$healthz" "$hello" \
  "$(python3 -c "print(f'{$healthz / $hello:.2f}')")"
printf '%-40s %12s %12s %8s\n' "GET /api/auth/me (baseline GET /me)" "$me" "$base_me" \
  "$(python3 -c "print(f'{$me / $base_me:.2f}')")"
