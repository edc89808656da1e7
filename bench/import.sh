#!/usr/bin/env bash
# Import benchmark: `tessera import-users --jsonl` of a generated file of N
# users (default 100,000; each with a Django pbkdf2_sha256 hash, an email, a
# join date) into a fresh SQLite file and a fresh PostgreSQL database, then the
# same file again (every user already present). Prints users imported per
# second, wall time and the command's peak resident memory (max RSS), and, as
# the baseline of the same run, Python's sqlite3 inserting the same rows into a
# table of the same shape, 1,000 rows per transaction, WAL and synchronous=FULL
# as Tessera's store uses.
#
# Usage: bench/import.sh [USERS]
# Needs python3 and /usr/bin/time; PostgreSQL at 127.0.0.1:5432 (user
# postgres, no password; override with PGHOST, PGPORT, PGUSER), skipped with a
# message when it does not answer. Bounded: N rows, each step once; the
# database is dropped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-100000}"
case "$users" in '' | *[!0-9]*) echo "usage: $0 [USERS]" >&2; exit 2 ;; esac
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PGCONNECT_TIMEOUT=5
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (Debian package time)" >&2; exit 1; }

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/tessera"
work="$(mktemp -d)"
database="tessera_import_bench_$$"
database_created=""
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  if [ -n "$database_created" ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null \
      || echo "could not drop database $database" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$users" "$work/users.jsonl" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
# One real Django hash (from the test fixtures' make_fixtures.py); the import
# reads and checks every row's hash format, not the password.
hash_ = "pbkdf2_sha256$10000$YlLjahIQDvo417sCPoHORx$g7+ngljX1heGMNm/c9mmkfCoxwK6DyE6TWIngLX2nd4="
with open(path, "w") as f:
    for i in range(1, n + 1):
        f.write(json.dumps({
            "id": i, "username": f"user{i:07d}", "password": hash_,
            "email": f"user{i}@example.com", "is_staff": i % 1000 == 0,
            "is_active": i % 97 != 0, "date_joined": "2024-01-31T08:00:00.123456Z",
            "last_login": None,
        }) + "\n")
PY
echo "generated $users users ($(du -h "$work/users.jsonl" | cut -f1))"

# Runs one import; prints "seconds max_rss_kib" and keeps its summary line.
run_import() {
  local url="$1" out="$2"
  TESSERA_DATABASE_URL="$url" TESSERA_LOG=warn /usr/bin/time -f "%e %M" -o "$work/time" \
    "$bin" import-users --jsonl "$work/users.jsonl" >"$out" 2>"$work/stderr" \
    || { cat "$work/stderr" >&2; exit 1; }
  cat "$work/time"
}

row() { # label seconds kib summary
  awk -v l="$1" -v s="$2" -v k="$3" -v n="$users" -v sum="$4" \
    'BEGIN { printf "| %s | %.2f s | %\047d users/s | %.1f MB | %s |\n", l, s, n / s, k / 1024, sum }'
}

echo
echo "| run | wall | rate | peak RSS | summary |"
echo "|---|---:|---:|---:|---|"
read -r secs kib < <(run_import "sqlite://$work/tessera.db" "$work/first")
row "Tessera, SQLite, first import" "$secs" "$kib" "$(tail -1 "$work/first")"
sqlite_first="$secs"
read -r secs kib < <(run_import "sqlite://$work/tessera.db" "$work/again")
row "Tessera, SQLite, same file again" "$secs" "$kib" "$(tail -1 "$work/again" | cut -c1-60)..."

if psql -X -q -d postgres -c "CREATE DATABASE $database" >/dev/null 2>&1; then
  database_created=1
  url="postgres://$PGUSER@$PGHOST:$PGPORT/$database"
  read -r secs kib < <(run_import "$url" "$work/pg-first")
  row "Tessera, PostgreSQL, first import" "$secs" "$kib" "$(tail -1 "$work/pg-first")"
  read -r secs kib < <(run_import "$url" "$work/pg-again")
  row "Tessera, PostgreSQL, same file again" "$secs" "$kib" "$(tail -1 "$work/pg-again" | cut -c1-60)..."
else
  echo "(PostgreSQL at $PGHOST:$PGPORT does not answer: its rows are skipped)"
fi

/usr/bin/time -f "%e %M" -o "$work/time" python3 - "$work/users.jsonl" "$work/baseline.db" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("""CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL, password_hash TEXT NOT NULL, is_staff BOOLEAN, is_superuser BOOLEAN,
  is_active BOOLEAN, token_version BIGINT DEFAULT 0, date_joined BIGINT, last_login BIGINT,
  revision BIGINT DEFAULT 0)""")
batch = []
def flush():
    db.execute("BEGIN")
    db.executemany("INSERT INTO users (id, username, email, password_hash, is_staff, is_superuser,"
                   " is_active, date_joined, last_login) VALUES (?,?,?,?,?,?,?,?,?)", batch)
    db.execute("COMMIT")
    batch.clear()
with open(sys.argv[1]) as f:
    for line in f:
        u = json.loads(line)
        batch.append((u["id"], u["username"], u["email"], u["password"], u["is_staff"], False,
                      u["is_active"], 1706688000, None))
        if len(batch) == 1000:
            flush()
if batch:
    flush()
PY
read -r base_secs base_kib <"$work/time"
row "baseline: Python sqlite3, 1,000 rows a transaction" "$base_secs" "$base_kib" "(no checks, no report)"
echo
awk -v t="$sqlite_first" -v b="$base_secs" \
  'BEGIN { printf "Tessera on SQLite imports at %.2f of the baseline'"'"'s rate.\n", b / t }'
