#!/usr/bin/env bash
# A throwaway PostgreSQL cluster, set up like the tests' PgCluster
# (tests/support/pg_cluster.h), for `make demo-postgres` and the benchmark:
#
#   pg-throwaway.sh start DIR   initdb into DIR/data unless it is there, start a
#                               server on a free port of 127.0.0.1 (trust auth,
#                               superuser `usher`, database `usher`) and print
#                               its URI, and nothing else, on stdout.
#   pg-throwaway.sh stop DIR    stop it (fast shutdown); DIR is left for the
#                               caller to delete.
#
# The server logs to DIR/log. initdb and pg_ctl refuse to run as root, so as
# root DIR is given to the `postgres` user and they run through runuser; DIR's
# parents must then be reachable by postgres (a `mktemp -d` dir itself is fine,
# a dir inside one is not).
# USHER_PG_BINDIR names the directory of initdb/pg_ctl/psql if the default
# (the newest /usr/lib/postgresql/<major>/bin, then PATH) is not right.
set -euo pipefail

die() {
  echo "pg-throwaway: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
[[ $cmd == start || $cmd == stop ]] || usage
[[ -n $2 ]] || usage

# Debian keeps the server tools out of PATH.
bindir=${USHER_PG_BINDIR:-}
if [[ -z $bindir ]]; then
  major=-1
  for candidate in /usr/lib/postgresql/*/bin; do
    version=${candidate#/usr/lib/postgresql/}
    version=${version%/bin}
    if [[ $version =~ ^[0-9]+$ && -x $candidate/initdb ]] && ((version > major)); then
      major=$version
      bindir=$candidate
    fi
  done
  [[ -n $bindir ]] || bindir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
fi
for tool in initdb pg_ctl psql; do
  [[ -x $bindir/$tool ]] || die "$tool not found in $bindir (install postgresql-15, or set USHER_PG_BINDIR)"
done

as_owner=()
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user to run the server as"
  as_owner=(runuser -u postgres --)
fi

# pg_ctl's own chatter goes to this file, shown when something fails.
ctl_out() { echo "$dir/pg_ctl.out"; }

start() {
  mkdir -p "$dir"
  if [[ ${#as_owner[@]} -gt 0 ]]; then
    chown -R postgres: "$dir"
    "${as_owner[@]}" test -w "$dir" -a -x "$dir" ||
      die "the postgres user cannot reach $dir: a parent directory is private to root (pass the mktemp -d directory itself, or one under /tmp)"
  fi
  if "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    die "a server is already running on $dir/data (stop it first: $0 stop $dir)"
  fi
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    # --no-sync: initdb's own files only; the server itself runs with fsync on.
    "${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U usher --auth=trust -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.out" 2>&1 || die "initdb into $dir/data failed:$(printf '\n'; tail -n 20 "$dir/initdb.out")"
  fi

  # A port found free may be taken before the server binds it: try another.
  local port attempt
  for attempt in 1 2 3 4 5; do
    port=$(perl -MIO::Socket::INET -e \
      'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) or die "bind: $!\n"; print $s->sockport')
    if "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c max_connections=200 -c fsync=on -c synchronous_commit=on" \
      >"$(ctl_out)" 2>&1; then
      break
    fi
    # One still starting after the timeout must not outlive the attempt.
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    [[ $attempt -lt 5 ]] || die "the server did not start (5 attempts); end of $dir/log:$(printf '\n'; tail -n 20 "$dir/log" 2>/dev/null)"
  done

  local psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U usher -d postgres -tA)
  if [[ -z $("${psql[@]}" -c "select 1 from pg_database where datname = 'usher'") ]]; then
    "${psql[@]}" -c "create database usher" >&2 || die "could not create database usher"
  fi
  echo "postgresql://usher@127.0.0.1:$port/usher"
}

stop() {
  [[ -d $dir/data ]] || die "no cluster in $dir (no $dir/data)"
  if ! "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "pg-throwaway: no server running on $dir/data" >&2
    return 0
  fi
  "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >"$(ctl_out)" 2>&1 ||
    die "pg_ctl stop failed:$(printf '\n'; cat "$(ctl_out)")"
}

dir=$(realpath -m -- "$2")
"$cmd"
