#!/usr/bin/env bash
# Builds vendor/ha_interrupt.so, the SQLite extension every engine connection loads so that
# statements can be timed out and cancelled (src/engine/native/ha_interrupt.c,
# docs/decisions/statement-interrupt.md). Needs gcc, and npm once: the SQLite headers come from the
# amalgamation in the npm package better-sqlite3 (same SQLite version as Deno's node:sqlite).
#
# Usage: build-extension.sh [--if-needed]
#   --if-needed: only when the .so is missing or older than its source.
set -euo pipefail
cd "$(dirname "$0")/.."

out=vendor/ha_interrupt.so
src_c=src/engine/native/ha_interrupt.c
if [[ "${1:-}" == "--if-needed" && -f "$out" && "$out" -nt "$src_c" ]]; then exit 0; fi
if ! command -v gcc >/dev/null 2>&1; then
  echo "build-extension: gcc not found: install it (apt-get install gcc) or run ./install.sh" >&2
  exit 2
fi

version=12.11.1 # better-sqlite3 12.11.1 ships SQLite 3.53.2
work=".tmp/sqlite-headers"
headers="$work/package/deps/sqlite3"
if [[ ! -f "$headers/sqlite3ext.h" ]]; then
  mkdir -p "$work"
  (cd "$work" && npm pack --silent "better-sqlite3@$version" >/dev/null &&
    tar xzf "better-sqlite3-$version.tgz" package/deps/sqlite3/sqlite3.h \
      package/deps/sqlite3/sqlite3ext.h && rm "better-sqlite3-$version.tgz")
fi
mkdir -p vendor
# Write beside the target and rename: a running ha keeps the file it loaded.
gcc -O2 -shared -fPIC -Wall -Werror -I "$headers" -o "$out.tmp" "$src_c" -lpthread
mv "$out.tmp" "$out"
echo "build-extension: built $out"
