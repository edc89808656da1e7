#!/usr/bin/env bash
# Audit-log benchmark: does a storm of failed logins, each an audit event,
# hold back the requests beside it? A release server on a fresh SQLite file
# with login_rate_limit = "1/min", so that the storm's logins are refused
# before any password hash (login_throttled) and what it costs is the
# request and its audit event. wrk drives GET /api/auth/me for DURATION
# seconds three times:
#   (a) alone;
#   (b) beside a second wrk of failed logins (one audit event each);
#   (c) beside a second wrk of as many refused token checks
#       (POST /api/token/verify/ with a bad token: the same kind of request,
#       no audit event): the baseline of (b), measured in the same run.
# Prints /me req/s of each, (b)/(c), the storm's req/s, the audit events
# written, the events the audit queue dropped, and the audit writer's busy
# time (tessera_audit_write_duration_seconds) during the storm.
#
# Usage: bench/audit.sh [DURATION_SECONDS]
# Bounded: each wrk runs DURATION seconds (default 5), 1 thread, 16
# connections each; the server is stopped and its files removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
case "$duration" in '' | *[!0-9]*) echo "usage: $0 [DURATION_SECONDS]" >&2; exit 2 ;; esac
command -v wrk >/dev/null || { echo "wrk is needed (Debian package wrk)" >&2; exit 1; }

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/tessera"
work="$(mktemp -d)"
pid=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/tessera.toml" <<TOML
bind = "127.0.0.1:0"
database_url = "sqlite://$work/tessera.db"
access_token_lifetime = "1h"
login_rate_limit = "1/min"
TOML
TESSERA_LOG=warn "$bin" --config "$work/tessera.toml" serve > "$work/stdout" 2> "$work/server.log" &
pid=$!
for _ in $(seq 1 150); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
base="http://$(sed -n 's/.*listening on //p' "$work/stdout")"
password="vivid-otter-canyon-1987!"
curl -s --max-time 10 -H 'Content-Type: application/json' "$base/api/auth/signup" \
  -d "{\"username\":\"bench\",\"password\":\"$password\"}" >/dev/null
access="$(curl -s --max-time 10 -H 'Content-Type: application/json' "$base/api/token/" \
  -d "{\"username\":\"bench\",\"password\":\"$password\"}" | sed -n 's/.*"access" *: *"\([^"]*\)".*/\1/p')"
[ -n "$access" ] || { echo "could not log in" >&2; cat "$work/server.log" >&2; exit 1; }

post_script() { # FILE PATH BODY
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.path = "$2"
wrk.body = '$3'
wrk.headers["Content-Type"] = "application/json"
LUA
}
post_script "$work/storm.lua" /api/token/ '{"username":"victim","password":"guess"}'
post_script "$work/control.lua" /api/token/verify/ '{"token":"not-a-token"}'

rps() { awk '/^Requests\/sec:/ {print $2}'; }
me() { timeout $((duration + 30)) wrk -t1 -c16 -d"${duration}s" -H "Authorization: Bearer $access" "$base/api/auth/me" | rps; }
beside() { # LUA: /me while the other wrk runs; prints "me_rps other_rps"
  timeout $((duration + 30)) wrk -t1 -c16 -d"${duration}s" -s "$1" "$base" > "$work/other" &
  local other=$!
  local m
  m="$(me)"
  wait "$other"
  echo "$m $(rps < "$work/other")"
}
events() {
  python3 - "$work/tessera.db" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])
PY
}

metric() { curl -s --max-time 10 "$base/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

me >/dev/null  # warm up
alone="$(me)"
busy_before="$(metric tessera_audit_write_duration_seconds_sum)"
read -r with_storm storm_rps < <(beside "$work/storm.lua")
sleep 1  # the writer drains its queue
written="$(events)"
busy_after="$(metric tessera_audit_write_duration_seconds_sum)"
batches="$(metric tessera_audit_write_duration_seconds_count)"
read -r with_control control_rps < <(beside "$work/control.lua")
dropped="$(metric tessera_audit_events_dropped_total)"

echo
echo "| run | /api/auth/me req/s | other req/s |"
echo "|---|---:|---:|"
echo "| (a) alone | $alone | |"
echo "| (b) beside failed logins (an audit event each) | $with_storm | $storm_rps |"
echo "| (c) beside refused token checks (no event) | $with_control | $control_rps |"
awk -v b="$with_storm" -v c="$with_control" -v a="$alone" \
  'BEGIN { printf "\n(b)/(c) = %.2f, (b)/(a) = %.2f\n", b / c, b / a }'
echo "audit events written: $written; dropped: ${dropped:-0}"
# The writer's own time is all that audit writes can take from /me: shown
# against the storm's wall time on the machine's cores.
awk -v b="${busy_before:-0}" -v a="${busy_after:-0}" -v n="${batches:-0}" -v d="$duration" \
  -v cores="$(nproc)" 'BEGIN { printf "audit writer busy: %.0f ms in %d batches during the %d s storm, disk flushes included (at most %.1f%% of %d cores)\n", (a - b) * 1000, n, d, (a - b) * 100 / (d * cores), cores }'
