#!/usr/bin/env bash
# What a login with a second factor (TOTP) costs against a password-only
# login: a release build of Tessera on a fresh SQLite file, driven by
# bench/mfa_bench.py (pyotp makes the codes) over one keep-alive connection,
# one request at a time. Prints the medians and the ratio
# (password step + verify, less one round trip) / password-only login;
# target <= 1.10 (reported, not enforced: exits non-zero only when the run
# cannot be set up).
#
# Usage: bench/mfa.sh [USERS] (default 40 a kind; about half a minute after
# the build). Needs the test tools' virtual environment ~/.cache/tessera-pyjwt
# (.ci/install-test-tools: pyotp). Listens on 127.0.0.1 only; the server and
# its directory are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-40}"
case "$users" in '' | *[!0-9]*) echo "usage: $0 [USERS]" >&2; exit 2 ;; esac
venv="$HOME/.cache/tessera-pyjwt"
"$venv/bin/python" -c 'import pyotp' 2>/dev/null \
  || { echo "bench/mfa.sh: pyotp is missing: run .ci/install-test-tools" >&2; exit 1; }
cargo build --release -p tessera-server --quiet
bin="${CARGO_TARGET_DIR:-target}/release/tessera"
work="$(mktemp -d)"
server=""
cleanup() { [ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; } || true; rm -rf "$work"; }
trap cleanup EXIT
cat > "$work/tessera.toml" <<TOML
bind = "127.0.0.1:0"
database_url = "sqlite://$work/tessera.db"
login_rate_limit = "off"
user_rate_limit = "off"
signup_rate_limit = "off"
TOML
"$bin" --config "$work/tessera.toml" serve > "$work/stdout" 2> "$work/server.log" &
server=$!
for ((i = 0; i < 150; i++)); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
address="$(sed -n 's/.*listening on //p' "$work/stdout")"
[ -n "$address" ] || { tail -n 20 "$work/server.log" >&2; echo "bench/mfa.sh: Tessera did not start" >&2; exit 1; }
echo "Machine: $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 "$venv/bin/python" bench/mfa_bench.py "$address" "$users"
