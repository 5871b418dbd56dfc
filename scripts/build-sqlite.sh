#!/usr/bin/env bash
# Builds libsqlite3 for the statement-interrupt prototype (docs/decisions/statement-interrupt.md):
# the SQLite amalgamation shipped in the npm package better-sqlite3 (no other network access
# needed), compiled with the session extension ha's CDC relies on. Output: vendor/libsqlite3.so
# (or $1). Takes about 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

version=12.11.1 # ships SQLite 3.53.2
out="${1:-vendor/libsqlite3.so}"
work=".tmp/sqlite-build"
mkdir -p "$work" "$(dirname "$out")"
if [[ ! -f "$work/package/deps/sqlite3/sqlite3.c" ]]; then
  (cd "$work" && npm pack --silent "better-sqlite3@$version" >/dev/null && tar xzf "better-sqlite3-$version.tgz")
fi
gcc -O2 -shared -fPIC \
  -DSQLITE_THREADSAFE=1 \
  -DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_SESSION \
  -DSQLITE_DEFAULT_WAL_SYNCHRONOUS=1 -DSQLITE_DQS=0 \
  -DSQLITE_OMIT_LOAD_EXTENSION \
  -o "$out" "$work/package/deps/sqlite3/sqlite3.c" -lpthread -lm
echo "built $out"
