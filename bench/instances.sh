#!/usr/bin/env bash
# Load benchmark, one instance on PostgreSQL against one on SQLite: two release
# instances of Tessera started side by side, one on a fresh SQLite file and one
# on a fresh PostgreSQL database, driven in turn by wrk over loopback with the
# same parameters. Prints req/s, p50 and p99 latency of
#   - GET /api/auth/me with a valid access token (a read: signature, claims,
#     revocation, user lookup), and
#   - POST /api/token/refresh/ with rotation and blacklist_after_rotation on (a
#     write transaction per request: blacklist the token, record the new one),
#     each refresh token presented exactly once (bench/refresh.lua),
# for both engines and their ratio, and the refreshes that did not answer 200.
# Exits non-zero if more than 1% of either engine's refreshes failed.
#
# Usage: bench/instances.sh [DURATION_SECONDS] [CONNECTIONS]
# Needs PostgreSQL at 127.0.0.1:5432 (user postgres, no password; override
# with PGHOST, PGPORT, PGUSER). Bounded: a 2 s warm-up and a DURATION-second
# (default 10) run of wrk per scenario and engine, 2 threads and CONNECTIONS
# (default 32) connections; the servers are stopped and the database dropped
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${2:-32}"
threads=2
warmup=2
case "$duration$connections" in *[!0-9]*) echo "usage: $0 [DURATION_SECONDS] [CONNECTIONS]" >&2; exit 2 ;; esac
if [ "$duration" -lt 1 ] || [ "$connections" -lt "$threads" ] || [ $((connections % threads)) -ne 0 ]; then
  echo "DURATION must be at least 1, CONNECTIONS a multiple of $threads" >&2
  exit 2
fi

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGCONNECT_TIMEOUT=5
command -v psql >/dev/null || { echo "psql is needed (PostgreSQL client)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)..." >&2
  apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
fi

cargo build --release --quiet
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/tessera"

work="$(mktemp -d)"
database="tessera_bench_$$"
database_created=""
declare -A pid=() base=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local engine
  for engine in "${!pid[@]}"; do
    kill "${pid[$engine]}" 2>/dev/null && wait "${pid[$engine]}" 2>/dev/null
  done
  if [ -n "$database_created" ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null \
      || echo "could not drop database $database" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $database" >/dev/null
database_created=1

# start ENGINE DATABASE_URL: a server of its own, with its own config and logs.
start() {
  local engine="$1" url="$2" dir="$work/$1"
  mkdir -p "$dir"
  cat > "$dir/tessera.toml" <<TOML
bind = "127.0.0.1:0"
database_url = "$url"
access_token_lifetime = "1h"
rotate_refresh_tokens = true
blacklist_after_rotation = true
# One user logs in once per wrk connection and refreshes thousands of times.
user_rate_limit = "off"
login_rate_limit = "off"
max_sessions_per_user = 100000
TOML
  "$bin" --config "$dir/tessera.toml" serve > "$dir/stdout" 2> "$dir/server.log" &
  pid[$engine]=$!
  for _ in $(seq 1 150); do
    grep -q "listening on" "$dir/stdout" 2>/dev/null && break
    kill -0 "${pid[$engine]}" 2>/dev/null || break
    sleep 0.1
  done
  local addr
  addr="$(sed -n 's/.*listening on //p' "$dir/stdout")"
  [ -n "$addr" ] || { echo "$engine server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
  base[$engine]="http://$addr"
}

password="vivid-otter-canyon-1987!"
credentials="{\"username\":\"bench\",\"password\":\"$password\"}"
post() { curl -s --max-time 10 -H 'Content-Type: application/json' "$@"; }
field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p"; }

# login_tokens ENGINE COUNT FILE: COUNT logins, one refresh token per line.
login_tokens() {
  local engine="$1" count="$2" file="$3" token
  : > "$file"
  for _ in $(seq 1 "$count"); do
    token="$(post "${base[$engine]}/api/token/" -d "$credentials" | field refresh)"
    [ -n "$token" ] || { echo "$engine: login failed" >&2; exit 1; }
    echo "$token" >> "$file"
  done
}

# wrk prints latency percentiles with --latency; take req/s, 50% and 99%.
parse() {
  awk '/^Requests\/sec:/ {rps = $2}
       $1 == "50%" {p50 = $2}
       $1 == "99%" {p99 = $2}
       /Non-2xx/ {bad = $NF}
       /^refresh_ok / {ok = $2}
       /^refresh_failed / {failed = $2}
       /^refresh_ok_per_s / {okps = $2}
       END {print rps, p50, p99, bad + 0, ok + 0, failed + 0, (okps == "" ? 0 : okps)}'
}
run_wrk() {
  local seconds="$1"; shift
  timeout $((seconds + 30)) wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency "$@"
}

declare -A me_rps me_p50 me_p99 me_bad rf_rps rf_p50 rf_p99 rf_ok rf_failed rf_errors

bench_me() {
  local engine="$1" access out
  access="$(post "${base[$engine]}/api/token/" -d "$credentials" | field access)"
  [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "${base[$engine]}/api/auth/me" \
        -H "Authorization: Bearer $access")" = 200 ] || { echo "$engine: token does not work" >&2; exit 1; }
  run_wrk "$warmup" -H "Authorization: Bearer $access" "${base[$engine]}/api/auth/me" >/dev/null
  out="$(run_wrk "$duration" -H "Authorization: Bearer $access" "${base[$engine]}/api/auth/me")"
  echo "$out" > "$work/$engine/me.wrk"
  local rps p50 p99 bad
  read -r rps p50 p99 bad _ < <(parse <<<"$out")
  me_rps[$engine]="$rps" me_p50[$engine]="$p50" me_p99[$engine]="$p99" me_bad[$engine]="$bad"
}

bench_refresh() {
  local engine="$1" dir="$work/$1" out
  # Check by hand that a refresh rotates and the old token is then refused.
  login_tokens "$engine" 1 "$dir/check.tokens"
  local old new
  old="$(cat "$dir/check.tokens")"
  new="$(post "${base[$engine]}/api/token/refresh/" -d "{\"refresh\":\"$old\"}" | field refresh)"
  if [ -z "$new" ] || [ "$new" = "$old" ]; then echo "$engine: refresh does not rotate" >&2; exit 1; fi
  [ "$(post -o /dev/null -w '%{http_code}' "${base[$engine]}/api/token/refresh/" \
        -d "{\"refresh\":\"$old\"}")" = 401 ] || { echo "$engine: a used refresh token still works" >&2; exit 1; }
  # Warm-up and measured run each get fresh chains: one login per connection.
  login_tokens "$engine" "$connections" "$dir/warmup.tokens"
  run_wrk "$warmup" -s bench/refresh.lua "${base[$engine]}" -- "$dir/warmup.tokens" "$threads" >/dev/null
  login_tokens "$engine" "$connections" "$dir/run.tokens"
  out="$(run_wrk "$duration" -s bench/refresh.lua "${base[$engine]}" -- "$dir/run.tokens" "$threads")"
  echo "$out" > "$dir/refresh.wrk"
  local p50 p99 ok failed okps
  read -r _ p50 p99 _ ok failed okps < <(parse <<<"$out")
  # Successful refreshes per second: the failures wrk counts are left out.
  rf_rps[$engine]="$okps" rf_p50[$engine]="$p50" rf_p99[$engine]="$p99"
  rf_ok[$engine]="$ok" rf_failed[$engine]="$failed"
  rf_errors[$engine]="$(sed -n 's/^ *Socket errors: *//p' <<<"$out")"
}

start sqlite "sqlite://$work/sqlite/tessera.db"
start postgres "postgres://$PGUSER@$PGHOST:$PGPORT/$database"
for engine in sqlite postgres; do
  [ "$(post "${base[$engine]}/api/auth/signup" -o /dev/null -w '%{http_code}' -d "$credentials")" = 201 ] \
    || { echo "$engine: signup failed" >&2; cat "$work/$engine/server.log" >&2; exit 1; }
done

# Back to back per scenario, the same wrk parameters for both engines.
for engine in sqlite postgres; do bench_me "$engine"; done
for engine in sqlite postgres; do bench_refresh "$engine"; done

echo "Tessera, one instance on PostgreSQL against one on SQLite: wrk, $threads threads, $connections connections, ${warmup}s warm-up + ${duration}s per scenario and engine, loopback, $(nproc) cores"
row() { printf '%-22s %13s %9s %9s %15s %9s %9s %10s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
row scenario "sqlite req/s" p50 p99 "postgres req/s" p50 p99 pg/sqlite
row "GET /api/auth/me" "${me_rps[sqlite]}" "${me_p50[sqlite]}" "${me_p99[sqlite]}" \
  "${me_rps[postgres]}" "${me_p50[postgres]}" "${me_p99[postgres]}" "$(ratio "${me_rps[postgres]}" "${me_rps[sqlite]}")"
row "refresh (rotation)" "${rf_rps[sqlite]}" "${rf_p50[sqlite]}" "${rf_p99[sqlite]}" \
  "${rf_rps[postgres]}" "${rf_p50[postgres]}" "${rf_p99[postgres]}" "$(ratio "${rf_rps[postgres]}" "${rf_rps[sqlite]}")"
echo "(refresh req/s counts 200 answers only)"

status=0
for engine in sqlite postgres; do
  echo "$engine: GET /api/auth/me non-2xx ${me_bad[$engine]}; refresh 200 ${rf_ok[$engine]}, non-200 ${rf_failed[$engine]}${rf_errors[$engine]:+, socket errors: ${rf_errors[$engine]}}"
  if awk -v ok="${rf_ok[$engine]}" -v bad="${rf_failed[$engine]}" 'BEGIN { exit !(ok + bad == 0 || bad > 0.01 * (ok + bad)) }'; then
    echo "$engine: more than 1% of refreshes failed; server log:" >&2
    grep -v ' INFO ' "$work/$engine/server.log" | tail -n 20 >&2 || true
    status=1
  fi
  if [ "${me_bad[$engine]}" -gt 0 ]; then
    echo "$engine: GET /api/auth/me answered non-2xx" >&2
    status=1
  fi
done
exit "$status"
