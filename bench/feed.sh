#!/usr/bin/env bash
# Revocation feed benchmark: one release instance of Tessera on a fresh
# PostgreSQL database (changes announced by PostgreSQL notifications), and
# the driver bench/feed (feed_bench) against it over loopback, in one run:
#   - revocation-to-refusal latency: FOLLOWERS verifiers (tessera-verify),
#     each following the feed with its own stream; REVOCATIONS access tokens
#     revoked one at a time by POST /oauth/revoke, each timed from the moment
#     its request is sent to each follower's first refusal (Revoked), polled
#     every 0.5 ms: p50, p99, max over REVOCATIONS x FOLLOWERS samples;
#   - verification throughput with the feed off and on, in turns (5 rounds,
#     counts added up): raw verify() calls/s (1 s a run) and GET /orders
#     req/s of the resource-server example served in process (32 keep-alive
#     connections, a 0.5 s warm-up, SECONDS counted a run), and the ratio
#     on / off;
#   - the same beside a storm of STORM_RATE revocations a second (paced,
#     from 2 s before the measurements to their end), feed on and off in
#     turns, the ratio taken between the two beside the same storm: on 2
#     shared cores the storm's own CPU (Tessera answering it, PostgreSQL
#     writing it) slows feed off as much as feed on; the ratio against the
#     quiet feed-off run is printed too.
# The targets are on GET /orders (what the service's clients see); raw
# verify() is shown beside it.
# Prints a table: metric, value, target, PASS/FAIL. Targets are reported,
# not enforced: exits non-zero only when the run cannot be set up.
#
# Usage: bench/feed.sh [REVOCATIONS] [FOLLOWERS] [SECONDS] [STORM_RATE]
# (defaults 500, 20, 2, 1000; about 2 minutes). Needs PostgreSQL at 127.0.0.1:5432 (user
# postgres, no password; override with PGHOST, PGPORT, PGUSER) and psql.
# Bounded: every loop of the driver has a count and a deadline, the driver
# itself runs under a 15-minute timeout; the server is stopped and the
# database dropped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
revocations="${1:-500}"
followers="${2:-20}"
seconds="${3:-2}"
storm_rate="${4:-1000}"
case "$revocations$followers$seconds$storm_rate" in
  *[!0-9]*) echo "usage: $0 [REVOCATIONS] [FOLLOWERS] [SECONDS] [STORM_RATE]" >&2; exit 2 ;;
esac

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGCONNECT_TIMEOUT=5
command -v psql >/dev/null || { echo "psql is needed (PostgreSQL client)" >&2; exit 1; }

echo "building release binaries..." >&2
cargo build --release --quiet -p tessera-server -p tessera-bench-feed
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/tessera"
driver="$target/release/feed_bench"

work="$(mktemp -d)"
database="tessera_feedbench_$$"
database_created=""
server_pid=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  fi
  if [ -n "$database_created" ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null \
      || echo "could not drop database $database" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $database" >/dev/null
database_created=1

cat > "$work/tessera.toml" <<TOML
bind = "127.0.0.1:0"
database_url = "postgres://$PGUSER@$PGHOST:$PGPORT/$database"
algorithm = "ES256"
access_token_lifetime = "1h"
# One login mints every access token the bench revokes, by refreshes.
rotate_refresh_tokens = false
user_rate_limit = "off"
login_rate_limit = "off"
TOML
export TESSERA_CONFIG="$work/tessera.toml"

"$bin" serve > "$work/stdout" 2> "$work/server.log" &
server_pid=$!
for _ in $(seq 1 150); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
addr="$(sed -n 's/.*listening on //p' "$work/stdout")"
[ -n "$addr" ] || { echo "the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }
origin="http://$addr"

export FEED_USERNAME=bench FEED_PASSWORD="vivid-otter-canyon-1987!"
status="$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"username\":\"$FEED_USERNAME\",\"password\":\"$FEED_PASSWORD\"}" "$origin/api/auth/signup")"
[ "$status" = 201 ] || { echo "signup answered $status" >&2; cat "$work/server.log" >&2; exit 1; }

# The client's secret goes to the driver through its environment only.
client="$("$bin" clients add feedbench --scope revocations 2>/dev/null)"
TESSERA_CLIENT_ID="$(sed -n 's/^client_id: //p' <<<"$client")"
TESSERA_CLIENT_SECRET="$(sed -n 's/^client_secret: //p' <<<"$client")"
[ -n "$TESSERA_CLIENT_ID" ] && [ -n "$TESSERA_CLIENT_SECRET" ] \
  || { echo "tessera clients add printed no client" >&2; exit 1; }
export TESSERA_CLIENT_ID TESSERA_CLIENT_SECRET

echo "Tessera revocation feed: one release instance on PostgreSQL (notifications), ES256," \
  "$followers followers, $revocations revocations, ${seconds}s per throughput run, storm $storm_rate/s;" \
  "Tessera, PostgreSQL and the driver share $(nproc) cores (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
timeout 900 "$driver" "$origin" "$revocations" "$followers" "$seconds" "$storm_rate" \
  || { echo "feed_bench failed; server log:" >&2; grep -v ' INFO ' "$work/server.log" | tail -n 20 >&2; exit 1; }
