// The `cluster` runner: N `usher serve` nodes on one PostgreSQL database
// (docs/cluster.md), each held to the same CPU share by a cgroup quota, loaded
// the way `server` mode loads one node: spec.concurrency workers spread
// evenly over the nodes (worker k on node k % N), each starting one saga at a
// time with ?wait=. The figure is the cluster's throughput at a fixed CPU per
// node, so that 1, 2 and 4 nodes can be compared (docs/performance.md,
// "Several nodes").
//
// What runs where: the nodes in their cgroups (one each, cgroup.h); the step
// service (started once by the suite), PostgreSQL and this driver outside any
// quota, on the machine's other CPU time. Their CPU is measured so that a
// run short of the nodes' quota can be told apart from one the machine could
// not feed.
//
// Measured over the load only, from the first start to the last answer: the
// nodes' CPU (/proc/<pid>/stat), PostgreSQL's (the postmaster's process tree,
// reaped children included), the step service's, the driver's, the machine's
// busy time (/proc/stat), the nodes' CFS throttling, and how long the nodes'
// and PostgreSQL's threads were runnable but not running (schedstat). For
// PostgreSQL, and for nodes that were not throttled, that is time spent
// waiting for a CPU: when it is large the machine, not the quota, held them
// back. WAL syncs
// (pg_stat_wal) are counted from before the first node starts to after the
// last one has stopped, because backends report them late; that adds the
// nodes' start (schema, joining) and their lease renewals (each node commits
// one every 500 ms) to the sagas' own flushes.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_run.h"
#include "cgroup.h"
#include "postgres.h"

namespace usher::bench {
namespace {

std::optional<double> metric(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return std::nullopt;
}

struct Node {
  Child child;
  std::string api;
};

void stop_nodes(std::vector<Node>& nodes) {
  // SIGTERM to all first: each finishes its commits and ends its lease.
  for (Node& n : nodes)
    if (n.child.pid > 0) kill(n.child.pid, SIGTERM);
  for (Node& n : nodes) wait_exit(n.child, 15);
}

}  // namespace

RunResult run_cluster(const RunSpec& spec) {
  RunResult r;
  r.spec = spec;
  auto fail = [&](std::string why) {
    r.ok = false;
    r.error = std::move(why);
    return r;
  };
  if (spec.db.empty()) return fail("cluster mode needs --db postgresql://… (nodes share one PostgreSQL)");
  if (spec.nodes == 0) return fail("--nodes must be at least 1");
  if (access(spec.usher_binary.c_str(), X_OK) != 0) return fail("no usher binary at " + spec.usher_binary);
  if (!reset_counts(spec.service_url, r.error)) return fail(r.error);
  if (!reset_postgres(spec.db, r.error)) return fail("cannot empty " + spec.db + ": " + r.error);
  const std::optional<int> postmaster = postmaster_pid(spec.db);

  std::optional<CpuQuotaGroups> groups;
  if (spec.node_cpus > 0) {
    std::string error;
    groups = CpuQuotaGroups::create(spec.nodes, spec.node_cpus, error);
    char share[32];
    std::snprintf(share, sizeof share, "%.2f", spec.node_cpus);
    if (!groups) return fail(std::string("cannot hold the nodes to ") + share + " CPU each: " + error);
    r.cgroups = groups->describe();
  }

  const std::optional<double> wal0 = wal_syncs(spec.db);
  // One at a time: the first creates the schema, the others find it made.
  std::vector<Node> nodes;
  for (unsigned i = 0; i < spec.nodes; ++i) {
    const std::string log = spec.work_dir + "/cluster-" + std::to_string(spec.nodes) + "-node-" + std::to_string(i + 1);
    std::vector<std::string> argv = {spec.usher_binary, "serve", "--db", spec.db, "--workflows", spec.workflows_dir,
                                     "--listen", "127.0.0.1:0", "--log-level", "warn", "--durability",
                                     spec.synchronous_full ? "full" : "normal"};
    auto child = spawn(argv, {"USHER_BENCH_SERVICE_URL=" + spec.service_url}, log + ".log",
                       groups ? groups->procs_file(i) : "");
    if (!child) {
      stop_nodes(nodes);
      return fail("cannot start " + spec.usher_binary);
    }
    nodes.push_back(Node{*child, ""});
    // A node at a quarter of a CPU starts slowly; give it time.
    auto port = read_line_with(nodes.back().child, "usher: listening on 127.0.0.1:", 60);
    if (!port) {
      stop_nodes(nodes);
      return fail("node " + std::to_string(i + 1) + " did not report its port (see " + log + ".log)");
    }
    drain(nodes.back().child, log + ".stdout.log");
    nodes.back().api = "http://127.0.0.1:" + *port;
  }

  std::vector<std::string> apis;
  for (const Node& n : nodes) apis.push_back(n.api);
  auto nodes_cpu = [&] {
    double sum = 0;
    for (const Node& n : nodes) sum += process_cpu_seconds(n.child.pid);
    return sum;
  };
  auto pg_cpu = [&]() -> std::optional<double> {
    return postmaster ? process_tree_cpu_seconds(*postmaster) : std::nullopt;
  };
  auto nodes_wait = [&] {
    double sum = 0;
    for (const Node& n : nodes) sum += run_queue_wait_seconds(n.child.pid);
    return sum;
  };
  // Per process, so a backend that exits during the load cannot make it go back.
  auto pg_waits = [&] {
    std::map<int, double> waits;
    if (!postmaster) return waits;
    waits[*postmaster] = run_queue_wait_seconds(*postmaster);
    for (int pid : child_pids(*postmaster)) waits[pid] = run_queue_wait_seconds(pid);
    return waits;
  };
  r.load_average = load_average_1m();
  const Throttling thr0 = groups ? groups->throttling() : Throttling{};
  const double nodes0 = nodes_cpu(), self0 = process_cpu_seconds(0), machine0 = machine_busy_cpu_seconds();
  const std::optional<double> pg0 = pg_cpu();
  const double svc0 = spec.service_pid > 0 ? process_cpu_seconds(spec.service_pid) : 0;
  const double nodes_wait0 = nodes_wait();
  const std::map<int, double> pg_waits0 = pg_waits();

  drive_server_starts(spec, apis, r);

  r.cpu_seconds = nodes_cpu() - nodes0;
  r.node_wait_seconds = nodes_wait() - nodes_wait0;
  if (postmaster) {
    double waited = 0;
    for (const auto& [pid, wait] : pg_waits()) {
      auto before = pg_waits0.find(pid);
      waited += wait - (before == pg_waits0.end() ? 0.0 : before->second);
    }
    r.pg_wait_seconds = waited;
  }
  if (auto pg1 = pg_cpu(); pg0 && pg1) r.pg_cpu_seconds = *pg1 - *pg0;
  if (spec.service_pid > 0) r.service_cpu_seconds = process_cpu_seconds(spec.service_pid) - svc0;
  r.driver_cpu_seconds = process_cpu_seconds(0) - self0;
  r.machine_cpu_seconds = machine_busy_cpu_seconds() - machine0;
  if (groups) {
    Throttling thr1 = groups->throttling();
    if (thr1.periods > thr0.periods)
      r.throttled_share = static_cast<double>(thr1.throttled - thr0.throttled) / static_cast<double>(thr1.periods - thr0.periods);
  }
  double commits = 0, events = 0, rss = 0;
  for (const Node& n : nodes) {
    rss = std::max(rss, peak_rss_mb(n.child.pid));
    if (auto m = http_request(n.api, "GET", "/metrics"); m && m->first == 200) {
      commits += metric(m->second, "usher_log_commits_total").value_or(0);
      events += metric(m->second, "usher_log_events_total").value_or(0);
    }
  }
  r.peak_rss_mb = rss;
  if (commits > 0) r.events_per_commit = events / commits;

  stop_nodes(nodes);
  if (groups) groups->remove();
  if (auto wal1 = wal_syncs(spec.db); wal0 && wal1) r.fsyncs = *wal1 - *wal0;
  r.count_check = check_counts(spec.service_url, spec.sagas, r.count_detail);
  return r;
}

}  // namespace usher::bench
