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
  std::string mode;          // baseline | embedded | server | local | kafka | recovery | soak
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
  std::string db;            // empty: a fresh SQLite file per run; else a PostgreSQL URI, emptied first
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
  std::vector<double> rss_samples_mb;    // soak
};

// Summary figures, also the JSON line a run prints.
Json to_json(const RunResult& r);
// One table, one row per run (JSON as to_json gives it); "%base" compares
// each run with the baseline run of the same concurrency.
std::string format_table(const std::vector<Json>& runs);

// The runners. Each returns a filled RunResult; none throws.
RunResult run_baseline(const RunSpec& spec);
RunResult run_server(const RunSpec& spec);
RunResult run_in_process(const RunSpec& spec);  // embedded, local, kafka, soak
RunResult run_recovery(const RunSpec& spec);

// Helpers (process.cpp).
double process_cpu_seconds(int pid);  // 0 = this process
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
std::optional<Child> spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           const std::string& log_path);
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
