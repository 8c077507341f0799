// usher-bench: the ticketing saga benchmark (docs/performance.md) driver.
//
//   usher-bench --suite quick|full|node [--json FILE] every mode, one table
//   usher-bench --suite node                          docs/performance.md with a Node step service
//   usher-bench --mode embedded -c 256 -n 20000       one run
//   usher-bench --suite cluster --db URI --rounds 3   1, 2 and 4 nodes on one PostgreSQL
//
//
// Modes: baseline (the driver calls the steps itself, no engine: the ceiling),
// embedded (engine in this process, steps over HTTP), server (`usher serve`,
// each saga one start with ?wait=), local (in-process handlers: the engine's
// own cost), kafka (pay over Kafka through librdkafka's mock cluster),
// recovery (N unfinished sagas, reopen, time resume()), soak (embedded for
// --soak-seconds, sampling RSS), cluster (--nodes `usher serve` processes on
// --db, each in a cgroup held to --node-cpu CPUs, C workers spread over them;
// cluster_load.cpp).
//
// A suite starts one step service and runs each mode in a fresh child process
// of its own (so peak RSS, CPU and fsync counts belong to that run alone),
// then prints the table, checks the targets of docs/performance.md and writes the JSON.
// The exit code is 0 when every run worked and every call count matched.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bench_run.h"

namespace fs = std::filesystem;
using usher::bench::Json;
using usher::bench::RunSpec;

namespace {

fs::path exe_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

usher::bench::RunResult run_one(const RunSpec& spec) {
  using namespace usher::bench;
  if (spec.mode == "baseline") return run_baseline(spec);
  if (spec.mode == "server") return run_server(spec);
  if (spec.mode == "recovery") return run_recovery(spec);
  if (spec.mode == "cluster") return run_cluster(spec);
  return run_in_process(spec);
}

struct Planned {
  std::string mode;
  unsigned c;
  uint64_t n;
  bool on_postgres = false;  // the run's log on --db (suite postgres)
  unsigned nodes = 1;        // cluster
};

// Suite cluster: per node, kClusterInFlight sagas in flight (enough to keep a
// node at its quota busy) and kClusterSagas sagas, so each run lasts about as
// long whatever the number of nodes if throughput scales.
constexpr unsigned kClusterInFlight = 64;
constexpr uint64_t kClusterSagas = 6000;
// The scaling goal of issue 14: 4 nodes >= 3 x one node at the same CPU share.
constexpr double kClusterGoal = 3.0;

std::vector<Planned> suite(const std::string& name, unsigned rounds) {
  if (name == "cluster") {
    // Rounds interleave the node counts, so a slow spell of the machine hits all of them.
    std::vector<Planned> plan;
    for (unsigned round = 0; round < rounds; ++round)
      for (unsigned nodes : {1u, 2u, 4u})
        plan.push_back({"cluster", kClusterInFlight * nodes, kClusterSagas * nodes, true, nodes});
    return plan;
  }
  if (name == "postgres") {
    // The PostgreSQL store next to SQLite, in one run (docs/postgresql.md).
    std::vector<Planned> both;
    for (bool pg : {false, true}) {
      for (Planned p : std::vector<Planned>{{"embedded", 1, 300}, {"server", 1, 300}, {"server", 64, 5000},
                                            {"local", 256, 20000}}) {
        p.on_postgres = pg;
        both.push_back(p);
      }
    }
    return both;
  }
  if (name == "node") {
    // docs/performance.md's table, on its own terms: the step service in Node.
    return {{"baseline", 1, 300}, {"baseline", 64, 20000}, {"embedded", 1, 300}, {"embedded", 64, 20000},
            {"server", 1, 300},   {"server", 64, 20000}};
  }
  if (name == "quick") {
    return {{"baseline", 1, 300},   {"baseline", 64, 5000},  {"baseline", 256, 5000}, {"embedded", 1, 300},
            {"embedded", 64, 5000}, {"embedded", 256, 5000}, {"server", 1, 300},      {"server", 64, 5000},
            {"server", 256, 5000},  {"local", 1, 300},       {"local", 256, 20000},   {"kafka", 64, 2000},
            {"recovery", 1024, 20000}};
  }
  return {{"baseline", 1, 300},     {"baseline", 64, 20000}, {"baseline", 256, 20000}, {"embedded", 1, 300},
          {"embedded", 64, 20000},  {"embedded", 256, 20000}, {"server", 1, 300},       {"server", 64, 20000},
          {"server", 256, 20000},   {"local", 1, 300},        {"local", 64, 20000},     {"local", 256, 20000},
          {"kafka", 1, 300},        {"kafka", 64, 20000},     {"recovery", 1024, 100000}, {"soak", 256, 0}};
}

// docs/performance.md and the benchmark issue's targets, checked against a suite's runs.
std::string check_targets(const std::vector<Json>& runs) {
  auto find = [&](const std::string& mode, unsigned c) -> const Json* {
    for (const Json& j : runs)
      if (j.value("mode", "") == mode && j.value("concurrency", 0u) == c && j.value("ok", false)) return &j;
    return nullptr;
  };
  std::string out;
  auto line = [&](bool met, const std::string& what) { out += std::string(met ? "  met     " : "  MISSED  ") + what + "\n"; };
  auto rate = [](const Json* j) { return j ? j->value("sagas_per_second", 0.0) : 0.0; };
  for (const char* mode : {"server", "embedded"}) {
    for (unsigned c : {64u, 256u}) {
      const Json* j = find(mode, c);
      const Json* b = find("baseline", c);
      if (!j || !b) continue;
      char buf[200];
      if (c == 256) {
        std::snprintf(buf, sizeof buf, "%s C=256: %.0f sagas/s >= 5000", mode, rate(j));
        line(rate(j) >= 5000, buf);
      }
      std::snprintf(buf, sizeof buf, "%s C=%u: %.0f%% of baseline >= 75%%", mode, c, 100 * rate(j) / rate(b));
      line(rate(j) >= 0.75 * rate(b), buf);
    }
  }
  if (const Json* j = find("local", 256)) line(rate(j) >= 20000, "local C=256: " + std::to_string(static_cast<int>(rate(j))) + " sagas/s >= 20000");
  for (const char* mode : {"embedded", "server"}) {
    const Json* j = find(mode, 1);
    const Json* b = find("baseline", 1);
    if (!j || !b) continue;
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s C=1: p50 %.2f ms <= baseline p50 %.2f ms + 1 ms", mode, j->value("p50_ms", 0.0),
                  b->value("p50_ms", 0.0));
    line(j->value("p50_ms", 0.0) <= b->value("p50_ms", 0.0) + 1.0, buf);
  }
  for (const char* mode : {"embedded", "server"}) {
    for (unsigned c : {64u, 256u}) {
      const Json* j = find(mode, c);
      if (!j || j->at("cpu_ms_per_saga").is_null()) continue;
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s C=%u: engine CPU %.3f ms/saga <= 0.5", mode, c, j->at("cpu_ms_per_saga").get<double>());
      line(j->at("cpu_ms_per_saga").get<double>() <= 0.5, buf);
      if (c == 256 && !j->at("peak_rss_mb").is_null()) {
        std::snprintf(buf, sizeof buf, "%s C=256: peak RSS %.1f MB <= 64", mode, j->at("peak_rss_mb").get<double>());
        line(j->at("peak_rss_mb").get<double>() <= 64, buf);
      }
    }
  }
  for (const char* mode : {"embedded", "server"}) {
    for (auto [c, limit] : {std::pair{1u, 5.0}, std::pair{64u, 0.25}}) {
      const Json* j = find(mode, c);
      if (!j || j->at("fsyncs_per_saga").is_null()) continue;
      char buf[200];
      std::snprintf(buf, sizeof buf, "%s C=%u: %.3f fsyncs/saga <= %.2f", mode, c, j->at("fsyncs_per_saga").get<double>(), limit);
      line(j->at("fsyncs_per_saga").get<double>() <= limit, buf);
    }
  }
  if (const Json* j = find("recovery", 1024)) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "recovery of %llu sagas: resume() %.2f s <= 5 s",
                  static_cast<unsigned long long>(j->value("sagas", uint64_t{0})), j->value("resume_seconds", 0.0));
    line(j->value("resume_seconds", 99.0) <= 5.0, buf);
  }
  for (const Json& j : runs) {
    auto samples = j.value("rss_samples_mb", std::vector<double>{});
    if (j.value("mode", "") != "soak" || samples.size() < 4) continue;
    // Flat: the second half never exceeds the first half's peak by more than 10 %.
    double first = 0, second = 0;
    for (size_t i = 0; i < samples.size(); ++i) (i < samples.size() / 2 ? first : second) = std::max(i < samples.size() / 2 ? first : second, samples[i]);
    char buf[200];
    std::snprintf(buf, sizeof buf, "soak: RSS flat (peak %.1f MB in the first half, %.1f MB in the second)", first, second);
    line(second <= first * 1.10, buf);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The ticketing saga benchmark (docs/performance.md)."};
  std::string suite_name, json_path;
  RunSpec spec;
  spec.mode = "embedded";
  std::string durability = "full";
  bool child = false;
  const fs::path bin = exe_dir();
  spec.workflows_dir = USHER_BENCH_SOURCE_DIR "/workflows";
  spec.work_dir = (bin / "bench-data").string();
  spec.usher_binary = (bin / ".." / "cli" / "usher").lexically_normal().string();
  spec.sync_counter_library = (bin / "libusher-bench-syncs.so").string();
  spec.sandbox_binary = (bin / ".." / "examples" / "kafka-sandbox" / "usher-kafka-sandbox").lexically_normal().string();
  double soak_seconds = 600;
  app.add_option("--suite", suite_name,
                 "quick (every mode, under 2 minutes), full (docs/performance.md's sizes and a soak), node (docs/performance.md's "
                 "comparison: baseline, embedded and server at C=1 and C=64; implies --service node) or postgres "
                 "(embedded C=1, server C=1 and C=64, local C=256, on SQLite and then on --db) or cluster (1, 2 "
                 "and 4 nodes on --db, 64 sagas in flight and 6000 sagas per node, each node at --node-cpu)")
      ->check(CLI::IsMember({"quick", "full", "node", "postgres", "cluster"}));
  app.add_option("--db", spec.db,
                 "a PostgreSQL URI: the runs' saga log (emptied before each run) instead of SQLite files; with "
                 "--suite postgres, the PostgreSQL half");
  std::string service_kind = "cpp";
  app.add_option("--service", service_kind,
                 "the step service to start: cpp (usher-bench-service, 2 threads) or node (bench/node/step_service.js, "
                 "needs node on PATH) [cpp]")
      ->check(CLI::IsMember({"cpp", "node"}));
  app.add_option("--mode", spec.mode, "one run: baseline|embedded|server|local|kafka|recovery|soak|cluster")
      ->check(CLI::IsMember({"baseline", "embedded", "server", "local", "kafka", "recovery", "soak", "cluster"}));
  app.add_option("--nodes", spec.nodes, "cluster: `usher serve` nodes sharing --db [1]")->check(CLI::Range(1u, 64u));
  app.add_option("--node-cpu", spec.node_cpus,
                 "cluster: each node's CPU quota in CPUs, a cgroup of its own (v1 cpu.cfs_quota_us or v2 cpu.max; "
                 "needs root); 0 for none [0.25]")
      ->check(CLI::Range(0.0, 64.0));
  unsigned rounds = 1;
  app.add_option("--rounds", rounds, "suite cluster: how many times to run 1, 2 and 4 nodes, interleaved [1]")
      ->check(CLI::Range(1u, 100u));
  app.add_option("-c,--concurrency", spec.concurrency, "sagas in flight [1]")->check(CLI::Range(1u, 100000u));
  app.add_option("-n,--sagas", spec.sagas, "sagas to run [300]");
  app.add_option("--soak-seconds", soak_seconds, "soak length [600]");
  app.add_option("--durability", durability, "full (synchronous=FULL) or normal [full]")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--service-url", spec.service_url, "use this step service instead of starting one");
  app.add_option("--work-dir", spec.work_dir, "databases and logs (must be a real disk) [<build>/bench/bench-data]");
  app.add_option("--json", json_path, "write the results as JSON here");
  app.add_flag("--publish", spec.publish,
               "server: publish the event feed to a Kafka mock cluster during the run, and report its lag");
  app.add_flag("--child", child, "internal: one run, its JSON on stdout");
  app.add_option("--service-pid", spec.service_pid, "internal: the step service's pid, to measure its CPU");
  CLI11_PARSE(app, argc, argv);
  if (suite_name == "postgres" && spec.db.empty()) {
    std::cerr << "usher-bench: --suite postgres needs --db postgresql://… (make bench-postgres starts a cluster)\n";
    return 2;
  }
  const bool cluster = suite_name == "cluster" || (suite_name.empty() && spec.mode == "cluster");
  if (cluster && spec.db.empty()) {
    std::cerr << "usher-bench: cluster runs need --db postgresql://… (make bench-cluster starts a cluster)\n";
    return 2;
  }
  spec.synchronous_full = durability == "full";
  spec.soak_seconds = soak_seconds;
  fs::create_directories(spec.work_dir);

  if (child) {
    Json j = usher::bench::to_json(run_one(spec));
    std::printf("RESULT %s\n", j.dump().c_str());
    return 0;
  }

  usher::bench::Child service;
  std::string service_name = spec.service_url;  // for the report: the URL given, or which service was started
  if (suite_name == "node") service_kind = "node";
  if (spec.service_url.empty()) {
    std::vector<std::string> service_argv = {(bin / "usher-bench-service").string(), "--threads", "2"};
    // env finds node on PATH and becomes it (exec), so the child is node itself.
    if (service_kind == "node") service_argv = {"/usr/bin/env", "node", USHER_BENCH_SOURCE_DIR "/node/step_service.js"};
    auto started = usher::bench::spawn(service_argv, {}, spec.work_dir + "/step-service.log");
    auto port = started ? usher::bench::read_line_with(*started, "port=", 10) : std::nullopt;
    if (!port) {
      std::cerr << "usher-bench: the step service did not start\n";
      return 1;
    }
    service = *started;
    usher::bench::drain(service, spec.work_dir + "/step-service.stdout.log");
    spec.service_url = "http://127.0.0.1:" + *port;
    service_name = service_kind == "node" ? "node (bench/node/step_service.js)" : "cpp (usher-bench-service)";
  }

  std::vector<Planned> plan = suite_name.empty()
                                 ? std::vector<Planned>{{spec.mode, spec.concurrency, spec.sagas, false, spec.nodes}}
                                 : suite(suite_name, rounds);
  std::vector<Json> results;
  bool green = true;
  for (const Planned& p : plan) {
    std::vector<std::string> args = {(bin / "usher-bench").string(), "--child", "--mode", p.mode, "-c", std::to_string(p.c),
                                     "-n", std::to_string(p.n), "--durability", durability, "--service-url",
                                     spec.service_url, "--work-dir", spec.work_dir, "--soak-seconds",
                                     std::to_string(soak_seconds)};
    if (spec.publish) args.push_back("--publish");
    if (!spec.db.empty() && (suite_name != "postgres" || p.on_postgres)) {
      args.push_back("--db");
      args.push_back(spec.db);
    }
    if (p.mode == "cluster") {
      args.push_back("--nodes");
      args.push_back(std::to_string(p.nodes));
      args.push_back("--node-cpu");
      args.push_back(std::to_string(spec.node_cpus));
      if (service.pid > 0) {
        args.push_back("--service-pid");
        args.push_back(std::to_string(service.pid));
      }
    }
    std::fprintf(stderr, "usher-bench: %s C=%u N=%llu%s ...\n", p.mode.c_str(), p.c, static_cast<unsigned long long>(p.n),
                 p.mode == "cluster" ? (" nodes=" + std::to_string(p.nodes)).c_str() : "");
    auto run = usher::bench::spawn(args, {}, spec.work_dir + "/" + p.mode + "-" + std::to_string(p.c) + ".run.log");
    std::optional<std::string> line = run ? usher::bench::read_line_with(*run, "RESULT ", soak_seconds + 900) : std::nullopt;
    Json j = line ? Json::parse(*line, nullptr, false) : Json();
    if (run) usher::bench::wait_exit(*run, 30);
    if (!j.is_object()) {
      j = {{"mode", p.mode}, {"concurrency", p.c}, {"sagas", p.n}, {"ok", false},
           {"error", "the run died; see " + spec.work_dir + "/" + p.mode + "-" + std::to_string(p.c) + ".run.log"},
           {"count_check", nullptr}};
    }
    if (!j.value("ok", false) || (j["count_check"].is_boolean() && !j["count_check"].get<bool>())) green = false;
    results.push_back(std::move(j));
  }
  if (service.pid > 0) usher::bench::stop_child(service);

  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::printf("\nusher-bench%s%s: synchronous=%s, %ld CPUs, step service %s, work dir %s\n\n",
              suite_name.empty() ? "" : " --suite ", suite_name.c_str(), spec.synchronous_full ? "FULL" : "NORMAL",
              sysconf(_SC_NPROCESSORS_ONLN), service_name.c_str(), spec.work_dir.c_str());
  if (cluster) {
    std::printf("nodes' CPU quota: %s each; PostgreSQL, the step service and the driver unconstrained\n\n",
                spec.node_cpus > 0 ? (std::to_string(spec.node_cpus).substr(0, 4) + " CPU").c_str() : "none");
    std::printf("%s", usher::bench::format_cluster_table(results, kClusterGoal).c_str());
  } else {
    std::printf("%s", usher::bench::format_table(results).c_str());
    std::printf("\ntargets (docs/performance.md):\n%s", check_targets(results).c_str());
  }
  Json all = {{"synchronous", spec.synchronous_full ? "FULL" : "NORMAL"}, {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
              {"step_service", service_name}, {"runs", results}};
  if (json_path.empty()) json_path = spec.work_dir + "/results.json";
  std::ofstream(json_path) << all.dump(2) << "\n";
  std::printf("\nJSON: %s\n%s\n", json_path.c_str(), green ? "all runs ok, call counts match" : "SOME RUNS FAILED");
  return green ? 0 : 1;
}
