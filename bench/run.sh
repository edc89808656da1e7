#!/usr/bin/env bash
# Load benchmark: a release build of Tessera on a fresh SQLite database, driven
# over loopback by wrk. Prints req/s and p99 latency of GET /api/auth/me (a
# valid token: signature, claims and revocation checked on every request) and
# of GET /healthz (the floor: routing and HTTP only), their ratio, and the
# server's resident memory at idle and after the load.
#
# Usage: bench/run.sh [DURATION_SECONDS] [CONNECTIONS]
# Bounded: each wrk run lasts DURATION seconds (default 10), and the server is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${2:-64}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --quiet
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/tessera"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/tessera.toml" <<TOML
bind = "127.0.0.1:0"
database_url = "sqlite://$work/tessera.db"
access_token_lifetime = "1h"
TOML
"$bin" --config "$work/tessera.toml" serve > "$work/stdout" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
addr="$(sed -n 's/.*listening on //p' "$work/stdout")"
[ -n "$addr" ] || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
base="http://$addr"

password="vivid-otter-canyon-1987!"
curl -sf "$base/api/auth/signup" -H 'Content-Type: application/json' \
  -d "{\"username\":\"bench\",\"password\":\"$password\"}" >/dev/null
access="$(curl -sf "$base/api/token/" -H 'Content-Type: application/json' \
  -d "{\"username\":\"bench\",\"password\":\"$password\"}" | sed -n 's/.*"access":"\([^"]*\)".*/\1/p')"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/api/auth/me" -H "Authorization: Bearer $access")" = 200 ] \
  || { echo "token does not work" >&2; exit 1; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
sleep 1
idle_rss="$(rss_kib)"

# wrk prints latency percentiles with --latency; take req/s and the 99% line.
run_wrk() {
  local out
  out="$(wrk -t2 -c"$connections" -d"${duration}s" --latency "$@")"
  local rps p99
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  local non2xx
  non2xx="$(awk '/Non-2xx/ {print $NF}' <<<"$out")"
  echo "$rps $p99 ${non2xx:-0}"
}

# Warm up both paths briefly, then measure.
wrk -t1 -c8 -d2s "$base/healthz" >/dev/null
read -r me_rps me_p99 me_bad < <(run_wrk -H "Authorization: Bearer $access" "$base/api/auth/me")
read -r hz_rps hz_p99 hz_bad < <(run_wrk "$base/healthz")
after_rss="$(rss_kib)"

echo "Tessera load benchmark: wrk, 2 threads, $connections connections, ${duration}s per endpoint, loopback, $(nproc) cores"
printf '%-28s %12s %10s %8s\n' endpoint req/s p99 non-2xx
printf '%-28s %12s %10s %8s\n' "GET /api/auth/me (token)" "$me_rps" "$me_p99" "$me_bad"
printf '%-28s %12s %10s %8s\n' "GET /healthz" "$hz_rps" "$hz_p99" "$hz_bad"
awk -v a="$me_rps" -v b="$hz_rps" 'BEGIN { printf "ratio me/healthz req/s: %.3f\n", a / b }'
awk -v i="$idle_rss" -v a="$after_rss" 'BEGIN { printf "resident memory: idle %.1f MiB, after load %.1f MiB\n", i / 1024, a / 1024 }'
