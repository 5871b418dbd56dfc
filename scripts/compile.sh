#!/usr/bin/env bash
# Builds the single `ha` binary: the program, its worker modules, a copy of nats-server and the
# SQLite extension vendor/ha_interrupt.so (embedded with --include; at run time ha copies them out
# to its cache directory). Needs network access the first time, for Deno's `denort` runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${HA_NATS_SERVER_BIN:-$(command -v nats-server || true)}"
[[ -n "$bin" ]] || bin=/usr/sbin/nats-server
if [[ ! -x "$bin" ]]; then
  echo "compile: nats-server not found: install it (apt-get install nats-server) or set HA_NATS_SERVER_BIN" >&2
  exit 2
fi
mkdir -p vendor
cp "$bin" vendor/nats-server
chmod 755 vendor/nats-server

bash scripts/build-extension.sh --if-needed

deno compile -A --unstable-worker-options --unstable-no-legacy-abort \
  --include src/engine/worker.ts \
  --include src/replication/writer_plugin.ts \
  --include vendor/nats-server \
  --include vendor/ha_interrupt.so \
  --include src/http/ui \
  --output "${1:-ha}" main.ts
