#!/usr/bin/env bash
# `make demo-postgres`: the demo (scripts/demo.sh) with its saga log on
# PostgreSQL instead of a SQLite file. Starts a throwaway PostgreSQL cluster
# (scripts/pg-throwaway.sh: initdb into a temp dir, a free port on 127.0.0.1),
# creates the schema with `usher migrate`, runs the same two bookings with
# `usher serve --db postgresql://…`, reads one back with `usher ls --db URI`,
# then stops the cluster and removes it, whatever happens.
set -euo pipefail

build=${1:-build}
cd "$(dirname "$0")/.."
root=$PWD
[[ $build == /* ]] || build=$root/$build
usher=$build/cli/usher

# mktemp -d gives a dir of its own, reachable by the postgres user when
# pg-throwaway.sh hands it over (as root).
pgdir=$(mktemp -d "${TMPDIR:-/tmp}/usher-demo-pg.XXXXXX")
stop_cluster() {
  local status=$?
  bash scripts/pg-throwaway.sh stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$pgdir"
  exit "$status"
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

echo "== a throwaway PostgreSQL cluster"
uri=$(bash scripts/pg-throwaway.sh start "$pgdir")
echo "saga log: $uri"
echo
echo "== usher migrate --db $uri"
"$usher" migrate --db "$uri"

USHER_DEMO_DB=$uri bash scripts/demo.sh "$build"

echo
echo "== usher ls --db $uri (straight from PostgreSQL, no server)"
"$usher" ls --db "$uri"
