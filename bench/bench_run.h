// What one benchmark run is asked to do and what it measured; shared by the
// runners (http_load.cpp, engine_load.cpp) and the report (report.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace usher::bench {

using Json = nlohmann::json;

struct RunSpec {
  std::string mode;          // baseline | embedded | server | local | kafka | recovery | soak | cluster
  unsigned concurrency = 1;  // sagas kept in flight
  uint64_t sagas = 300;      // N (recovery: sagas left unfinished; soak: ignored)
  double soak_seconds = 0;   // soak: how long to run
  std::string service_url;   // the HTTP step service, e.g. http://127.0.0.1:40123
  std::string workflows_dir; // bench/workflows
  std::string work_dir;      // where databases go (a real disk: tmpfs would not sync)
  std::string usher_binary;  // server mode
  std::string sync_counter_library;  // server mode: sync_counter_preload.cpp, built as a module
  std::string sandbox_binary;  // kafka mode: usher-kafka-sandbox
  bool synchronous_full = true;
  bool publish = false;      // server: publish the feed to Kafka (a mock cluster) during the run
  std::string db;            // empty: a fresh SQLite file per run; else a PostgreSQL URI, emptied first
  unsigned nodes = 1;        // cluster: `usher serve` nodes on `db`
  double node_cpus = 0.25;   // cluster: each node's cgroup CPU quota, in CPUs; 0: no quota
  int service_pid = 0;       // the step service's pid when the suite started it (cluster: its CPU), else 0
};

struct RunResult {
  RunSpec spec;
  bool ok = true;
  std::string error;
  double seconds = 0;
  uint64_t completed = 0;
  uint64_t compensated = 0;
  uint64_t other = 0;  // stuck, failed to start, wrong answers
  std::vector<float> latencies_ms;  // one per finished saga (not kept by soak)
  std::optional<bool> count_check;  // nullopt: not checked
  std::string count_detail;
  std::optional<double> cpu_seconds;     // the engine's process (or the driver's, for baseline)
  std::optional<double> peak_rss_mb;
  std::optional<double> events_per_commit;
  std::optional<double> fsyncs;          // fsync + fdatasync calls of the engine's process; on
                                         // PostgreSQL the server's WAL syncs (pg_stat_wal.wal_sync)
  std::optional<double> resume_seconds;  // recovery: Engine::resume()
  std::optional<double> feed_events_per_second;  // server: the run's events read back from GET /v1/events
  // server --publish, from /healthz sampled every 100 ms during the run:
  std::optional<double> publish_max_lag_events;
  std::optional<double> publish_max_lag_seconds;
  std::optional<double> publish_catch_up_seconds;   // after the last saga, until every event was published
  std::optional<double> publish_events_per_second;  // events / (the run + the catch-up)
  std::vector<double> rss_samples_mb;    // soak
  // cluster (cluster_load.cpp), over the load only (from the first start to the last answer):
  std::optional<double> pg_cpu_seconds;       // PostgreSQL's processes (the postmaster and its children)
  std::optional<double> service_cpu_seconds;  // the step service
  std::optional<double> driver_cpu_seconds;   // this process
  std::optional<double> machine_cpu_seconds;  // every CPU's busy time (/proc/stat), ours and others'
  std::optional<double> throttled_share;      // of the nodes' CFS periods, those that hit the quota
  std::optional<double> node_wait_seconds;    // the nodes' threads, runnable but not running (throttled or
                                              // waiting for a CPU)
  std::optional<double> pg_wait_seconds;      // the same for PostgreSQL's live processes
  std::optional<double> load_average;         // 1-minute load average at the start of the load
  std::string cgroups;                        // which cgroup version held the quotas
};

// Summary figures, also the JSON line a run prints.
Json to_json(const RunResult& r);
// One table, one row per run (JSON as to_json gives it); "%base" compares
// each run with the baseline run of the same concurrency.
std::string format_table(const std::vector<Json>& runs);
// The cluster runs' own table: one row per run (nodes' CPU against their
// quota, PostgreSQL's CPU and WAL syncs per saga, the rest of the machine),
// then min / median / max per node count and the scaling goal (4 nodes >=
// `goal` x one node's throughput).
std::string format_cluster_table(const std::vector<Json>& runs, double goal);

// The runners. Each returns a filled RunResult; none throws.
RunResult run_baseline(const RunSpec& spec);
RunResult run_server(const RunSpec& spec);
RunResult run_in_process(const RunSpec& spec);  // embedded, local, kafka, soak
RunResult run_recovery(const RunSpec& spec);
RunResult run_cluster(const RunSpec& spec);     // cluster_load.cpp

// Server and cluster load (http_load.cpp): spec.concurrency workers, worker k
// on apis[k % apis.size()] over one keep-alive connection, start seats
// 1..spec.sagas, each with one POST .../sagas?wait=120s; fills the timing,
// the endings and the latencies of `out`.
void drive_server_starts(const RunSpec& spec, const std::vector<std::string>& apis, RunResult& out);

// Helpers (process.cpp).
double process_cpu_seconds(int pid);  // 0 = this process
// CPU of a process and its children: its own, its reaped children's
// (cutime/cstime) and its live children's (PostgreSQL: the postmaster's pid).
std::optional<double> process_tree_cpu_seconds(int pid);
std::vector<int> child_pids(int pid);
// Time the process's live threads spent runnable but not running
// (/proc/<pid>/task/*/schedstat). That includes the time a thread of a
// throttled cgroup waits for the next period; with no throttling it is the
// time it waited for a CPU, the sign of a machine with too few cores.
double run_queue_wait_seconds(int pid);
double machine_busy_cpu_seconds();    // /proc/stat: every CPU's user+nice+system+irq+softirq
double load_average_1m();             // /proc/loadavg
double peak_rss_mb(int pid);          // VmHWM
double current_rss_mb(int pid);       // VmRSS
uint64_t fsyncs_in_this_process();    // see fsync_count.cpp
// Asks the step service for its counts and compares them with N sagas' expectation.
bool check_counts(const std::string& service_url, uint64_t sagas, std::string& detail,
                  const std::vector<uint64_t>& extra = {});
bool reset_counts(const std::string& service_url, std::string& error);
// GET/POST on 127.0.0.1, one short-lived connection: for /stats, /metrics, /healthz.
std::optional<std::pair<int, std::string>> http_request(const std::string& url, const std::string& method,
                                                         const std::string& target, const std::string& body = "");

struct Child {
  int pid = -1;
  int stdout_fd = -1;
};
// Starts argv[0] with `env` added; its stdout is a pipe, its stderr goes to `log_path`.
// With `cgroup_procs`, the child writes its pid there before exec (it exits
// with 126 if it cannot), so the whole program runs in that cgroup.
std::optional<Child> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           const std::string& log_path, const std::string& cgroup_procs = "");
// Reads the child's stdout until a line starting with `prefix` (returns the rest), or timeout.
std::optional<std::string> read_line_with(Child& child, const std::string& prefix, double timeout_s);
// From now on copies the child's stdout to `path` on a thread of its own, so
// that a child that writes a lot is never blocked on a full pipe.
void drain(Child& child, const std::string& path);
// SIGTERM, then SIGKILL after `grace_s`; reaps it.
void stop_child(Child& child, double grace_s = 5);
// Waits for the child to exit by itself; SIGKILL after `grace_s`.
void wait_exit(Child& child, double grace_s);

}  // namespace usher::bench
