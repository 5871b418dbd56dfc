#!/usr/bin/env bash
# Installs what ha needs on a Debian/Ubuntu machine that has Node.js and npm:
# deno (the npm package, pinned), nats-server, gcc (to build the SQLite extension
# vendor/ha_interrupt.so that makes statements stoppable; built at the end), the
# PostgreSQL clients, Python psycopg and Chromium used by the tests, and wrk and
# dqlite-demo for the benchmarks. Safe to run again: it skips what is there.
set -euo pipefail

DENO_VERSION=2.9.6
need_apt=()

if ! command -v deno >/dev/null 2>&1 || [[ "$(deno --version | head -1)" != "deno ${DENO_VERSION} "* ]]; then
  echo "install.sh: installing deno ${DENO_VERSION} from npm"
  npm install -g --allow-scripts=deno "deno@${DENO_VERSION}" >/dev/null 2>&1 ||
    npm install -g "deno@${DENO_VERSION}"
fi

command -v nats-server >/dev/null 2>&1 || need_apt+=(nats-server)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v pgbench >/dev/null 2>&1 || need_apt+=(postgresql-contrib)
command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium) # the dashboard's browser test
/usr/bin/python3 -c 'import psycopg' >/dev/null 2>&1 || need_apt+=(python3-psycopg)
# SQLAlchemy 1.4 Core over psycopg2: the ORM introspection test (tests/integration/pgwire_orm_test.ts)
/usr/bin/python3 -c 'import sqlalchemy, psycopg2' >/dev/null 2>&1 || need_apt+=(python3-sqlalchemy python3-psycopg2)
# For `deno task bench compare` (small): the load generator and the dqlite anchor.
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v dqlite-demo >/dev/null 2>&1 || need_apt+=(go-dqlite)
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
  need_apt+=(postgresql)

if ((${#need_apt[@]})); then
  echo "install.sh: installing ${need_apt[*]} with apt-get"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Warm deno's npm cache so the first run does not download in the middle of a test.
cd "$(dirname "$0")"
deno install --quiet >/dev/null 2>&1 || deno cache main.ts
bash scripts/build-extension.sh --if-needed
echo "install.sh: ready ($(deno --version | head -1), $(nats-server --version))"
