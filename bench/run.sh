#!/usr/bin/env bash
# Load benchmark against a baseline: release builds of Tessera (on fresh
# SQLite files) and of bench/baseline (a bare axum + jsonwebtoken server with
# the same HS256 secret), driven over loopback by wrk, Tessera's runs
# interleaved with the baseline's (baseline, Tessera, baseline, Tessera...).
# Prints one table: each scenario's req/s, p50 and p99 latency, its ratio to
# its reference (the baseline run just before it, or Tessera's run of (b)),
# the target and PASS / FAIL.
#
#   (a) GET /healthz against the baseline's GET /hello           >= 0.90
#   (b) GET /api/auth/me, HS256, one token, against GET /me       >= 0.90
#   (c) GET /api/auth/check, HS256, against (b)                   >= 1.00
#   (d) GET /api/auth/me with ES256, with EdDSA, one token,
#       against the baseline's HS256 GET /me                      >= 0.80
#   (e) (d) with 10,000 distinct tokens round-robin               reported
#   (f) POST /api/token/refresh/ with rotation and blacklisting,
#       each token once, 200s only, against (b)      >= 0.25 and p99 < 20 ms
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
# 1 thread and 32 connections; about 5 minutes in all at the default on two
# cores. Everything listens on 127.0.0.1; servers, helpers and the temporary
# directory are removed on exit. Exits 0 when every scenario ran (whether its
# target passed or not: see the table), non-zero when one could not run.
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
# Servers (pid) and helpers (helper) running, by name; removed once reaped.
declare -A pid=() helper=() base=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local p
  for p in "${helper[@]}" "${pid[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${helper[@]}" "${pid[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
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
# SQLite file of its own. HS256 instances sign with the baseline's secret;
# the others generate their key at first start.
start_tessera() {
  local name="$1" algorithm="$2" dir="$work/$1"
  shift 2
  mkdir -p "$dir"
  {
    echo 'bind = "127.0.0.1:0"'
    echo "database_url = \"sqlite://$dir/tessera.db\""
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
# errors) and, with bench/refresh.lua, r_ok r_failed r_okps.
parse_wrk() {
  local p50 p99
  read -r r_rps p50 p99 r_bad r_ok r_failed r_okps < <(awk '
    /^Requests\/sec:/ {rps = $2}
    $1 == "50%" {p50 = $2}
    $1 == "99%" {p99 = $2}
    /Non-2xx or 3xx responses:/ {bad += $NF}
    /Socket errors:/ {gsub(/,/, ""); bad += $4 + $6 + $8 + $10}
    /^refresh_ok / {ok = $2}
    /^refresh_failed / {failed = $2}
    /^refresh_ok_per_s / {okps = $2}
    END {print (rps == "" ? "-" : rps), (p50 == "" ? "-" : p50), (p99 == "" ? "-" : p99),
               bad + 0, ok + 0, failed + 0, (okps == "" ? 0 : okps)}' "$1")
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

# (f): refresh with rotation and blacklisting, each token once (bench/refresh.lua).
start_tessera rotation HS256 'rotate_refresh_tokens = true' 'blacklist_after_rotation = true'
signup rotation bench >/dev/null
note "f: 2 x $connections logins for the refresh chains"
refresh_tokens rotation bench "$connections" "$work/f.warmup.tokens"
refresh_tokens rotation bench "$connections" "$work/f.run.tokens"
measure f.base "${auth[@]}" "${base[baseline]}/me"
runs=$((runs + 1))
wrk_run "$warmup" -s bench/refresh.lua "${base[rotation]}" -- "$work/f.warmup.tokens" "$threads" \
  > "$work/f.warmup" || die "wrk failed (f warm-up)"
wrk_run "$duration" -s bench/refresh.lua "${base[rotation]}" -- "$work/f.run.tokens" "$threads" \
  > "$work/f.wrk" || die "wrk failed (f)"
parse_wrk "$work/f.wrk"
# Successful refreshes per second: the failures wrk counts are left out.
rps[f]="$r_okps" p50[f]="$r_p50" p99[f]="$r_p99" bad[f]="$((r_failed + r_bad))"
f_ok="$r_ok" f_failed="$r_failed"
note "f: $f_ok refreshes answered 200, $f_failed did not"
stop rotation

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
  tessera_row "(d) Tessera GET /api/auth/me $alg" "d.$alg" "d.$alg.base" "(d) baseline" 0.80
done
for alg in ES256 EdDSA; do
  baseline_row "(e) baseline GET /me HS256, 10,000 tokens" "e.$alg.base"
  row "(e) Tessera /api/auth/me $alg, 10,000 tokens" "${rps[e.$alg]}" "${p50[e.$alg]}" "${p99[e.$alg]}" \
    "${bad[e.$alg]}" "$(ratio "${rps[e.$alg]}" "${rps[e.$alg.base]}")" "(e) baseline" "reported" \
    "$([ "${bad[e.$alg]}" -eq 0 ] && echo REPORTED || echo "REPORTED (errors)")"
done
baseline_row "(f) baseline GET /me" f.base
f_ratio="$(ratio "${rps[f]}" "${rps[b.tessera]}")"
f_result="$(verdict "$f_ratio" 0.25 "${bad[f]}")"
if [ "$f_result" = PASS ] && ! awk -v p="${p99[f]}" 'BEGIN { exit !(p < 20) }'; then f_result="FAIL (p99)"; fi
row "(f) Tessera refresh, rotation + blacklist" "${rps[f]}" "${p50[f]}" "${p99[f]}" "${bad[f]}" \
  "$f_ratio" "(b) Tessera" ">= 0.25, p99 < 20 ms" "$f_result"
baseline_row "(g) baseline GET /me" g.base
tessera_row "(g) Tessera /api/auth/me + 1M jtis, 100k families" g.tessera b.tessera "(b) Tessera" 0.95
baseline_row "(h) baseline GET /me" h.base
tessera_row "(h) Tessera /api/auth/me + 32 logins" h.tessera b.tessera "(b) Tessera" 0.50
row "(h) the logins beside it: POST /api/token/" "${rps[h.logins]}" "${p50[h.logins]}" "${p99[h.logins]}" \
  "${bad[h.logins]}" "" "" "" ""
memory_rows

echo "Tessera against bench/baseline: wrk -t$threads -c$connections, ${warmup}s warm-up + ${duration}s per run, loopback, $runs runs interleaved"
# shellcheck disable=SC2059  # the format is ours
printf "$columns\n" scenario req/s "p50 ms" "p99 ms" errors ratio "of" target result
printf '%s\n' "${rows[@]}"
echo "errors: non-2xx answers and socket errors; (f) counts only refreshes answered 200 (${f_ok} did, ${f_failed} did not)."
echo "(g) restart with the rows loaded: ${g_start} s. (i) the instance of the idle connections was at $(awk -v k="$rss_idle_fresh" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }') before them; the baseline at $(awk -v k="$rss_baseline" 'BEGIN { printf "%.1f MB", k * 1024 / 1e6 }') at the end."
# The same ratios against (b), each divided first by the baseline run just
# before it: what is left if the machine got faster or slower in between.
awk -v b="$(ratio "${rps[b.tessera]}" "${rps[b.base]}")" \
  -v c="$(ratio "${rps[c.tessera]}" "${rps[c.base]}")" -v f="$(ratio "${rps[f]}" "${rps[f.base]}")" \
  -v g="$(ratio "${rps[g.tessera]}" "${rps[g.base]}")" -v h="$(ratio "${rps[h.tessera]}" "${rps[h.base]}")" 'BEGIN {
  printf "Against (b), each run first divided by its own baseline run (drift removed): (c) %.3f, (f) %.3f, (g) %.3f, (h) %.3f.\n", c / b, f / b, g / b, h / b
}'
# Warnings and errors the servers logged (request lines are INFO).
for log in "$work"/*/server.log; do
  name="$(basename "$(dirname "$log")")"
  count="$(grep -cE ' (WARN|ERROR) ' "$log" || true)"
  if [ "$count" -gt 0 ]; then
    echo "$name logged $count warnings or errors, the first:"
    grep -E ' (WARN|ERROR) ' "$log" | head -n 3 | cut -c1-300
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
