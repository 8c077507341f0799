#!/usr/bin/env bash
# `make bench-cluster`: throughput with 1, 2 and 4 `usher serve` nodes on one
# PostgreSQL (docs/performance.md, "Several nodes"). Starts a throwaway
# PostgreSQL cluster (scripts/pg-throwaway.sh; synchronous_commit on), then
# `usher-bench --suite cluster`: for each round, 1, 2 and 4 nodes, each node
# in a cgroup of its own held to BENCH_CLUSTER_NODE_CPU of a CPU, 64 sagas in
# flight and 6000 sagas per node. PostgreSQL, the step service (started once)
# and the driver run outside the quotas; their CPU is measured. The cluster is
# stopped and removed afterwards, and usher-bench removes its cgroups.
#
#   bash scripts/bench-cluster.sh [BUILD_DIR] [usher-bench options...]
#
# BENCH_CLUSTER_ROUNDS (3) rounds; BENCH_CLUSTER_NODE_CPU (0.25) CPUs per node.
# Needs root, or a writable cgroup: the cpu controller of cgroup v2
# (/sys/fs/cgroup, cpu.max) or of cgroup v1 (/sys/fs/cgroup/cpu, cpu.cfs_quota_us).
set -euo pipefail

build=${1:-build}
cd "$(dirname "$0")/.."
[[ $build == /* ]] || build=$PWD/$build
rounds=${BENCH_CLUSTER_ROUNDS:-3}
node_cpu=${BENCH_CLUSTER_NODE_CPU:-0.25}

die() {
  echo "bench-cluster: $*" >&2
  exit 1
}

[[ -x $build/bench/usher-bench ]] || die "no $build/bench/usher-bench (build the usher-bench target first)"

# Which cgroup holds the quotas; said before anything is started.
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  grep -qw cpu /sys/fs/cgroup/cgroup.controllers ||
    die "cgroup v2 is mounted at /sys/fs/cgroup, but it offers no cpu controller (cgroup.controllers)"
  [[ -w /sys/fs/cgroup ]] || die "cgroup v2 at /sys/fs/cgroup is not writable by $(id -un): run as root"
  cgroups="cgroup v2 (cpu.max)"
elif [[ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
  [[ -w /sys/fs/cgroup/cpu ]] || die "cgroup v1's cpu hierarchy /sys/fs/cgroup/cpu is not writable by $(id -un): run as root"
  cgroups="cgroup v1 (cpu.cfs_quota_us / cpu.cfs_period_us)"
else
  die "no cgroup cpu controller: neither cgroup v2 (/sys/fs/cgroup/cgroup.controllers) nor cgroup v1 (/sys/fs/cgroup/cpu) is mounted; nodes cannot be held to a CPU share"
fi

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/usher-bench-cluster-pg.XXXXXX")
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
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "quotas: $cgroups, $node_cpu CPU per node; $rounds rounds of 1, 2, 4 nodes"
"$build/bench/usher-bench" --suite cluster --db "$uri" --rounds "$rounds" --node-cpu "$node_cpu" \
  --json "$build/bench/bench-data/cluster.json" "${@:2}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
