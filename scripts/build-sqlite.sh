#!/usr/bin/env bash
# Builds the statement-interrupt prototypes (docs/decisions/statement-interrupt.md) from the SQLite
# amalgamation shipped in the npm package better-sqlite3 (no other network access needed):
# - vendor/ha_interrupt.so: the extension node:sqlite loads for statement timeouts and cancel
#   (bench/ha_interrupt.c, built against the same version's sqlite3ext.h; a second or so);
# - vendor/libsqlite3.so: a whole libsqlite3 with the session extension ha's CDC relies on, for
#   the FFI candidate (about 30 s; skipped with --extension-only).
set -euo pipefail
cd "$(dirname "$0")/.."

version=12.11.1 # ships SQLite 3.53.2
work=".tmp/sqlite-build"
mkdir -p "$work" vendor
if [[ ! -f "$work/package/deps/sqlite3/sqlite3.c" ]]; then
  (cd "$work" && npm pack --silent "better-sqlite3@$version" >/dev/null && tar xzf "better-sqlite3-$version.tgz")
fi
src="$work/package/deps/sqlite3"
gcc -O2 -shared -fPIC -Wall -I "$src" -o vendor/ha_interrupt.so bench/ha_interrupt.c -lpthread
echo "built vendor/ha_interrupt.so"
[[ "${1:-}" == "--extension-only" ]] && exit 0
gcc -O2 -shared -fPIC \
  -DSQLITE_THREADSAFE=1 \
  -DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION \
  -DSQLITE_DEFAULT_WAL_SYNCHRONOUS=1 -DSQLITE_DQS=0 \
  -DSQLITE_OMIT_LOAD_EXTENSION \
  -o vendor/libsqlite3.so "$src/sqlite3.c" -lpthread -lm
echo "built vendor/libsqlite3.so"
