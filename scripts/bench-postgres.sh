#!/usr/bin/env bash
# `make bench-postgres`: the PostgreSQL store next to SQLite, in one run
# (usher-bench --suite postgres): embedded C=1, server C=1 and C=64 and local
# handlers C=256, first on SQLite files, then on a throwaway PostgreSQL cluster
# on this machine (scripts/pg-throwaway.sh; synchronous_commit on), which is
# stopped and removed afterwards. The table's fsync/sg column counts the
# engine's own syncs on SQLite and the server's WAL syncs on PostgreSQL.
set -euo pipefail

build=${1:-build}
cd "$(dirname "$0")/.."
[[ $build == /* ]] || build=$PWD/$build

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/usher-bench-pg.XXXXXX")
stop_cluster() {
  local status=$?
  bash scripts/pg-throwaway.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$pgdir"
  exit "$status"
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

uri=$(bash scripts/pg-throwaway.sh start "$pgdir")
echo "PostgreSQL: $uri ($(psql "$uri" -Atc 'SHOW server_version'), synchronous_commit=$(psql "$uri" -Atc 'SHOW synchronous_commit'))"
"$build/bench/usher-bench" --suite postgres --db "$uri" "${@:2}"
