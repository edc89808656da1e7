#!/usr/bin/env bash
# Python verification benchmark: tessera_verify (the PyO3 package in python/,
# built in release) against the pure-Python verifiers it replaces, with two
# release instances of Tessera on SQLite (one HS256 with a signing_key, one
# ES256), and the driver bench/python_bench.py, in one run:
#   - Verifier.verify calls/s against PyJWT's jwt.decode of the same token
#     with the same checks (the algorithm allow-listed, exp/iat/jti/
#     token_type/user_id required, the key loaded once), HS256 and ES256;
#     the Verifier follows that Tessera's revocation feed (connected), so
#     every call includes the revocation check; single thread, ROUNDS rounds
#     alternating which side goes first, counts added up. Twice: one token
#     over and over (SECONDS a side a round; tessera_verify's cache of
#     verified tokens spares the signature check, as for a client that
#     presents its token on every request) and a new token each call (4,000
#     a side a round, each verified once: the signature checked every time;
#     Tessera's token with another jti, signed by the driver with Tessera's
#     own key, which is why the ES256 key is made here). Target: ours >= 2x
#     PyJWT, both ways.
#   - a DRF endpoint's req/s (HS256) with tessera_verify.django's
#     TesseraAuthentication (stateless user, feed followed) against
#     simplejwt's JWTAuthentication (the user row read from SQLite, the
#     connection kept open), the same APIView, called through Django's WSGI
#     handler in process (no HTTP server, no test Client, no middleware);
#     same rounds. Target: ours >= 1.5x. Skipped, saying so, when the
#     package has no tessera_verify.django.
# Tessera is idle while the loops run (the followers' streams are quiet):
# nothing is pinned.
# Prints a table: metric, value, target, PASS/FAIL. Targets are reported,
# not enforced: exits non-zero only when the run cannot be set up.
#
# Usage: bench/python.sh [SECONDS] [ROUNDS] (defaults 1, 5; about a minute).
# Needs the test tools' virtual environment ~/.cache/tessera-pyjwt
# (.ci/install-test-tools: maturin, PyJWT with cryptography, Django, DRF,
# simplejwt). Builds tessera-server and the package in release
# (CARGO_TARGET_DIR, default target/; the package is installed into that
# environment with maturin develop --release). BENCH_NO_BUILD=1 skips both
# builds and uses what is there (BENCH_TESSERA_BIN names another server
# binary): for trying the driver, not for numbers.
# Bounded: the servers wait at most 15 s to listen, the driver's loops each
# have a count and a deadline, the driver runs under a 10-minute timeout;
# the servers are stopped and their directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${1:-1}"
rounds="${2:-5}"
case "$seconds$rounds" in
  *[!0-9.]*) echo "usage: $0 [SECONDS] [ROUNDS]" >&2; exit 2 ;;
esac

venv="${HOME:-/root}/.cache/tessera-pyjwt"
python="$venv/bin/python"
"$python" -c 'import maturin, jwt, cryptography, django, rest_framework, rest_framework_simplejwt' 2>/dev/null \
  || { echo "needs maturin, PyJWT, cryptography, Django, DRF and simplejwt in $venv (.ci/install-test-tools)" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
export CARGO_TARGET_DIR="$target"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  echo "building release binaries..." >&2
  cargo build --release --quiet -p tessera-server
  (cd python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --release --quiet)
fi
bin="${BENCH_TESSERA_BIN:-$target/release/tessera}"
[ -x "$bin" ] || { echo "no tessera binary at $bin" >&2; exit 1; }

# Tessera reads every TESSERA_* variable as a setting: none reach it.
server_env=(env)
for name in $(compgen -e); do
  case "$name" in TESSERA_*) server_env+=(-u "$name") ;; esac
done

work="$(mktemp -d)"
server_pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  for pid in "${server_pids[@]}"; do
    # SIGKILL: a graceful stop waits on the followers' open feed streams.
    kill -9 "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null || true; }
  done
  rm -rf "$work"
}
trap cleanup EXIT

# start NAME ALGORITHM [SIGNING_KEY]: a Tessera in $work/NAME; sets $origin.
start() {
  local dir="$work/$1"
  mkdir -p "$dir"
  {
    echo 'bind = "127.0.0.1:0"'
    echo "database_url = \"sqlite://$dir/tessera.db\""
    echo "algorithm = \"$2\""
    [ -z "${3:-}" ] || echo "signing_key = \"$3\""
    echo 'signup_rate_limit = "off"'
    echo 'login_rate_limit = "off"'
    echo 'user_rate_limit = "off"'
  } > "$dir/tessera.toml"
  (cd "$dir" && exec "${server_env[@]}" "$bin" --config "$dir/tessera.toml" serve) \
    > "$dir/stdout" 2> "$dir/server.log" &
  server_pids+=("$!")
  for _ in $(seq 1 150); do
    grep -q "listening on" "$dir/stdout" 2>/dev/null && break
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  origin="http://$(sed -n 's/.*listening on //p' "$dir/stdout")"
  [ "$origin" != "http://" ] || { echo "the $2 server did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
}

# client NAME CLIENT: a revocations client on server NAME; sets $client_id, $client_secret.
client() {
  local out
  out="$(cd "$work/$1" && "${server_env[@]}" "$bin" --config "$work/$1/tessera.toml" clients add "$2" --scope revocations 2>/dev/null)"
  client_id="$(sed -n 's/^client_id: //p' <<<"$out")"
  client_secret="$(sed -n 's/^client_secret: //p' <<<"$out")"
  [ -n "$client_id" ] && [ -n "$client_secret" ] || { echo "tessera clients add printed no client" >&2; exit 1; }
}

# The signing key and the clients' secrets reach the driver through its
# environment only.
key="$("$python" -c 'import secrets; print(secrets.token_hex(32))')"
start hs256 HS256 "$key"
BENCH_HS256_ORIGIN="$origin"
client hs256 verify
BENCH_HS256_CLIENT_ID="$client_id" BENCH_HS256_CLIENT_SECRET="$client_secret"
client hs256 django
BENCH_HS256_DJANGO_CLIENT_ID="$client_id" BENCH_HS256_DJANGO_CLIENT_SECRET="$client_secret"
# The ES256 key is made here, so that the driver can sign tokens as Tessera
# does (see the cold measurement).
"$python" -c '
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
sys.stdout.buffer.write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))' > "$work/es256.pem"
start es256 ES256 "$work/es256.pem"
BENCH_ES256_ORIGIN="$origin"
client es256 verify
BENCH_ES256_CLIENT_ID="$client_id" BENCH_ES256_CLIENT_SECRET="$client_secret"
export BENCH_HS256_ORIGIN BENCH_HS256_CLIENT_ID BENCH_HS256_CLIENT_SECRET \
  BENCH_HS256_DJANGO_CLIENT_ID BENCH_HS256_DJANGO_CLIENT_SECRET \
  BENCH_ES256_ORIGIN BENCH_ES256_CLIENT_ID BENCH_ES256_CLIENT_SECRET
export BENCH_HS256_KEY="$key" BENCH_ES256_KEY_FILE="$work/es256.pem" BENCH_WORKDIR="$work"

build="release"
[ "${BENCH_NO_BUILD:-0}" != 1 ] || build="as found (BENCH_NO_BUILD: numbers do not count)"
echo "tessera_verify vs PyJWT $("$python" -c 'import jwt; print(jwt.__version__)') and simplejwt" \
  "$("$python" -c 'import importlib.metadata as m; print(m.version("djangorestframework-simplejwt"))'):" \
  "two Tesseras on SQLite (HS256, ES256), build $build, ${seconds}s a side a round, $rounds rounds," \
  "Python $("$python" -c 'import platform; print(platform.python_version())'), $(nproc) cores" \
  "(load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" timeout 600 "$python" bench/python_bench.py "$seconds" "$rounds" \
  || { echo "python_bench failed; server logs:" >&2; grep -hv ' INFO ' "$work"/*/server.log | tail -n 20 >&2; exit 1; }
