// The runners with the engine in this process: `embedded` (steps over HTTP to
// the step service), `local` (in-process handlers: the engine's own cost),
// `kafka` (pay over Kafka through a mock cluster, the rest over HTTP), `soak`
// (embedded for a fixed time, sampling RSS) and `recovery` (leave N sagas
// unfinished, reopen, time resume()).
//
// The driver keeps C sagas in flight with start_async + on_settled: both call
// back on the engine thread, where the next saga is started, so the driver
// adds no thread and no lock of its own to the engine's.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "bench_run.h"
#include "postgres.h"
#include "http/step/http_step_adapter.h"
#include "kafka/kafka_step_adapter.h"
#include "services/kafka_step_service.h"
#include "ticketing_rules.h"
#include "usher/engine.h"

namespace usher::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool path_of_operation(const std::string& op, Path& out) {
  static const std::pair<const char*, Path> kOps[] = {
      {"reserve", Path::kReserve}, {"cancel", Path::kReserveCancel}, {"pay", Path::kPay},
      {"refund", Path::kPayRefund}, {"confirm", Path::kConfirm},     {"notify", Path::kNotify}};
  for (const auto& [name, path] : kOps) {
    if (op == name) {
      out = path;
      return true;
    }
  }
  return false;
}

// The step semantics as an in-process handler (local mode and recovery).
StepResult local_step(Counts& counts, const StepCall& call) {
  Path path;
  if (!path_of_operation(call.operation, path)) return StepResult::failed("unknown operation " + call.operation);
  counts.bump(path);
  const std::string& saga_id = call.body.at("sagaId").get_ref<const std::string&>();
  const int64_t seat = call.body.at("seat").get<int64_t>();
  switch (path) {
    case Path::kReserve: return StepResult::ok(Json{{"reservationId", "r-" + saga_id}});
    case Path::kPay:
      if (declined(seat)) return StepResult::failed("card declined");
      return StepResult::ok(Json{{"paymentId", "p-" + saga_id}});
    default: return StepResult::ok(Json::object());
  }
}

void register_local(Engine& engine, Counts& counts) {
  for (const char* op : {"reserve", "cancel", "pay", "refund", "confirm", "notify"})
    engine.register_handler(std::string("svc.") + op, [&counts](const StepCall& c) { return local_step(counts, c); });
}

// Drops every call: the saga stays where it is, unfinished, for `recovery`.
class ParkedAdapter final : public StepAdapter {
 public:
  void dispatch(StepCall, StepCallback) override {}
};

// The run's saga log: a new SQLite file in the work dir, or the PostgreSQL
// database of --db, emptied. "" if it cannot be emptied.
std::string fresh_db(const RunSpec& spec, const std::string& name) {
  if (!spec.db.empty()) {
    std::string error;
    if (!reset_postgres(spec.db, error)) {
      std::fprintf(stderr, "usher-bench: cannot empty %s: %s\n", spec.db.c_str(), error.c_str());
      return "";
    }
    return spec.db;
  }
  std::filesystem::create_directories(spec.work_dir);
  std::string db = spec.work_dir + "/" + name + ".db";
  for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(db + ext);
  return db;
}

Result<DefinitionPtr> load_workflow(const std::string& path) {
  auto loaded = load_definition_file(path);
  if (!loaded.ok()) {
    std::string why = path + ":";
    for (const auto& d : loaded.diagnostics) why += " " + d.to_string();
    return Status::invalid_argument(why);
  }
  return loaded.definition;
}

// Keeps `concurrency` sagas in flight until `total` are finished (or, for a
// soak, until `stop` is set), from the engine thread's callbacks.
class Driver {
 public:
  Driver(Engine& engine, std::string workflow, uint64_t total, bool keep_latencies)
      : engine_(engine), workflow_(std::move(workflow)), total_(total) {
    if (keep_latencies) {
      latencies_.assign(total, 0.0f);
      started_at_.resize(total);
    }
  }

  void run(unsigned concurrency) {
    for (unsigned i = 0; i < concurrency; ++i) launch();
  }
  void wait() { done_.get_future().wait(); }
  void stop_launching() { stop_ = true; }

  std::vector<float> latencies_;
  std::atomic<uint64_t> completed_{0}, compensated_{0}, other_{0}, finished_{0}, launched_{0};

 private:
  void launch() {
    uint64_t seat = next_.fetch_add(1);
    if (seat > total_ || stop_) {
      // A soak stops here: it is done once every launched saga has finished.
      // (drained_ is claimed only once the counts agree, or the last finish()
      // would find it taken and never release wait().)
      if (stop_ && finished_ == launched_ && !drained_.exchange(true)) done_.set_value();
      return;
    }
    ++launched_;
    if (!started_at_.empty()) started_at_[seat - 1] = SteadyClock::now();
    StartRequest req;
    req.workflow = workflow_;
    req.input = Json{{"seat", seat}};
    engine_.start_async(std::move(req), [this, seat](Result<StartResponse> r) {
      if (!r.is_ok()) return finish(seat, false, false);
      engine_.on_settled(r->id, Millis::max(), [this, seat](Json saga) {
        const std::string status = saga.is_object() ? saga.value("status", "") : "";
        finish(seat, status == "completed", status == "compensated");
      });
    });
  }

  void finish(uint64_t seat, bool completed, bool compensated) {
    if (!started_at_.empty())
      latencies_[seat - 1] = std::chrono::duration<float, std::milli>(SteadyClock::now() - started_at_[seat - 1]).count();
    (completed ? completed_ : compensated ? compensated_ : other_)++;
    uint64_t f = ++finished_;
    if (!stop_ && f == total_) {
      done_.set_value();
      return;
    }
    if (stop_ && f == launched_) {
      if (!drained_.exchange(true)) done_.set_value();
      return;
    }
    launch();
  }

  Engine& engine_;
  std::string workflow_;
  uint64_t total_;
  std::vector<SteadyClock::time_point> started_at_;
  std::atomic<uint64_t> next_{1};
  std::atomic<bool> stop_{false}, drained_{false};
  std::promise<void> done_;
};

struct KafkaSide {
  Child sandbox;
  std::unique_ptr<KafkaStepService> service;
  Counts counts;
};

}  // namespace

RunResult run_in_process(const RunSpec& spec) {
  RunResult r;
  r.spec = spec;
  auto fail = [&](std::string why) {
    r.ok = false;
    r.error = std::move(why);
    return r;
  };
  const bool local = spec.mode == "local";
  const bool kafka = spec.mode == "kafka";
  const bool soak = spec.mode == "soak";
  Counts local_counts;
  KafkaSide ks;
  if (!local && !reset_counts(spec.service_url, r.error)) return fail(r.error);
  setenv("USHER_BENCH_SERVICE_URL", spec.service_url.c_str(), 1);

  std::string workflow = "bench-ticketing";
  std::string yaml = spec.workflows_dir + "/bench-ticketing.yaml";
  if (kafka) {
    workflow = "bench-ticketing-kafka";
    yaml = spec.workflows_dir + "-kafka/bench-ticketing-kafka.yaml";
    auto sandbox = spawn({spec.sandbox_binary, "--brokers", "1", "--topics", "bench.pay.requests,usher.replies",
                          "--partitions", "4"},
                         {}, spec.work_dir + "/kafka-sandbox.log");
    if (!sandbox) return fail("cannot start " + spec.sandbox_binary);
    ks.sandbox = *sandbox;
    auto brokers = read_line_with(ks.sandbox, "bootstrap.servers=", 20);
    if (!brokers) {
      stop_child(ks.sandbox);
      return fail("the Kafka mock cluster did not start (see " + spec.work_dir + "/kafka-sandbox.log)");
    }
    drain(ks.sandbox, spec.work_dir + "/kafka-sandbox.stdout.log");
    setenv("USHER_BENCH_KAFKA_BROKERS", brokers->c_str(), 1);
    KafkaStepServiceOptions svc_options;
    svc_options.brokers = *brokers;
    svc_options.topics = {"bench.pay.requests"};
    svc_options.group_id = "usher-bench-payments";
    auto svc = KafkaStepService::create(
        svc_options,
        [&ks](const KafkaStepRequest& req) -> std::optional<KafkaStepReply> {
          Path path;
          if (!path_of_operation(req.operation, path)) return KafkaStepReply::failed("unknown operation");
          ks.counts.bump(path);
          if (path == Path::kPay && declined(req.body.value("seat", int64_t{0})))
            return KafkaStepReply::failed("card declined");
          if (path == Path::kPay) return KafkaStepReply::ok(Json{{"paymentId", "p-" + req.saga_id}});
          return KafkaStepReply::ok();
        });
    if (!svc.is_ok()) {
      stop_child(ks.sandbox);
      return fail("Kafka payments service: " + svc.status().to_string());
    }
    ks.service = std::move(svc.value());
    if (Status s = ks.service->start(); !s.is_ok()) {
      stop_child(ks.sandbox);
      return fail("Kafka payments service: " + s.to_string());
    }
    // A new consumer group takes a few seconds to be assigned its partitions.
    for (int i = 0; i < 300 && ks.service->assigned_partitions() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  auto def = load_workflow(yaml);
  if (!def.is_ok()) return fail(def.status().to_string());
  EngineOptions options;
  options.db_path = fresh_db(spec, spec.mode + "-" + std::to_string(spec.concurrency));
  if (options.db_path.empty()) return fail("cannot empty " + spec.db);
  options.durability = spec.synchronous_full ? Durability::kFull : Durability::kNormal;
  const std::optional<double> wal0 = spec.db.empty() ? std::nullopt : wal_syncs(spec.db);
  auto opened = Engine::open(options);
  if (!opened.is_ok()) return fail(opened.status().to_string());
  std::unique_ptr<Engine> engine = std::move(opened.value());
  if (Status s = engine->load(*def); !s.is_ok()) return fail(s.to_string());
  if (local) {
    register_local(*engine, local_counts);
  } else {
    engine->bind_transport(Transport::kHttp, std::make_shared<HttpStepAdapter>());
  }
  if (kafka) {
    auto adapter = KafkaStepAdapter::create();
    if (!adapter.is_ok()) return fail(adapter.status().to_string());
    engine->bind_transport(Transport::kKafka, adapter.value());
  }
  if (Status s = engine->resume(); !s.is_ok()) return fail(s.to_string());

  const uint64_t total = soak ? UINT64_MAX : spec.sagas;
  Driver driver(*engine, workflow, total, !soak);
  const EngineStats s0 = engine->stats();
  const uint64_t syncs0 = fsyncs_in_this_process();
  const double cpu0 = process_cpu_seconds(0);
  const auto t0 = SteadyClock::now();
  driver.run(spec.concurrency);
  if (soak) {
    // Sample every 10 s; the first sample is taken once the run is warm.
    const auto end = t0 + std::chrono::duration<double>(spec.soak_seconds);
    auto next_sample = t0 + std::chrono::seconds(10);
    while (SteadyClock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (SteadyClock::now() >= next_sample) {
        r.rss_samples_mb.push_back(current_rss_mb(0));
        next_sample += std::chrono::seconds(10);
      }
    }
    driver.stop_launching();
  }
  driver.wait();
  r.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  r.cpu_seconds = process_cpu_seconds(0) - cpu0;
  const double syncs = static_cast<double>(fsyncs_in_this_process() - syncs0);
  const EngineStats s1 = engine->stats();
  r.peak_rss_mb = peak_rss_mb(0);
  r.completed = driver.completed_;
  r.compensated = driver.compensated_;
  r.other = driver.other_;
  r.latencies_ms = std::move(driver.latencies_);
  if (s1.commits > s0.commits)
    r.events_per_commit = static_cast<double>(s1.events_committed - s0.events_committed) /
                          static_cast<double>(s1.commits - s0.commits);
  r.fsyncs = syncs;
  engine->shutdown();
  engine.reset();
  if (wal0) {
    auto wal1 = wal_syncs(spec.db);
    r.fsyncs = wal1 ? std::optional<double>(*wal1 - *wal0) : std::nullopt;
  }
  const uint64_t finished = soak ? driver.finished_.load() : spec.sagas;
  if (soak) r.spec.sagas = finished;
  if (local) {
    auto want = expected_counts(finished);
    bool ok = true;
    for (size_t i = 0; i < kPathCount; ++i) ok = ok && local_counts.get(static_cast<Path>(i)) == want[i];
    r.count_check = ok;
    r.count_detail = ok ? "pass" : "fail: " + local_counts.to_json();
  } else {
    std::vector<uint64_t> extra(kPathCount, 0);
    for (size_t i = 0; i < kPathCount; ++i) extra[i] = ks.counts.get(static_cast<Path>(i));
    r.count_check = check_counts(spec.service_url, finished, r.count_detail, extra);
  }
  if (kafka) {
    ks.service->stop();
    stop_child(ks.sandbox);
  }
  // A 10-minute soak leaves a log of several GB; the other runs' logs are
  // small and kept for inspection.
  if (soak && spec.db.empty())
    for (const char* ext : {"", "-wal", "-shm"}) std::filesystem::remove(options.db_path + ext);
  return r;
}

RunResult run_recovery(const RunSpec& spec) {
  RunResult r;
  r.spec = spec;
  auto fail = [&](std::string why) {
    r.ok = false;
    r.error = std::move(why);
    return r;
  };
  // The bench workflow with an attempt timeout long enough that no parked call
  // times out (and is retried) while the sagas are being created.
  std::ifstream in(spec.workflows_dir + "/bench-ticketing.yaml");
  std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (auto at = source.find("timeout: 10s"); at != std::string::npos) source.replace(at, 12, "timeout: 1h");
  auto loaded = load_definition(source, "bench-ticketing (recovery)");
  if (!loaded.ok()) return fail("cannot load the recovery workflow");
  EngineOptions options;
  options.db_path = fresh_db(spec, "recovery");
  if (options.db_path.empty()) return fail("cannot empty " + spec.db);
  options.durability = spec.synchronous_full ? Durability::kFull : Durability::kNormal;

  {  // 1. Start N sagas whose first step never answers, then close the engine.
    auto opened = Engine::open(options);
    if (!opened.is_ok()) return fail(opened.status().to_string());
    auto& engine = *opened.value();
    if (Status s = engine.load(loaded.definition); !s.is_ok()) return fail(s.to_string());
    engine.bind_service("svc", std::make_shared<ParkedAdapter>());
    if (Status s = engine.resume(); !s.is_ok()) return fail(s.to_string());
    std::atomic<uint64_t> next{1}, durable{0}, failed{0};
    std::promise<void> all;
    std::function<void()> launch = [&] {
      uint64_t seat = next++;
      if (seat > spec.sagas) return;
      StartRequest req;
      req.workflow = "bench-ticketing";
      req.input = Json{{"seat", seat}};
      engine.start_async(std::move(req), [&](Result<StartResponse> res) {
                           if (!res.is_ok()) ++failed;
                           if (++durable == spec.sagas) all.set_value();
                           launch();
                         });
    };
    for (unsigned i = 0; i < std::max(spec.concurrency, 1u); ++i) launch();
    all.get_future().wait();
    engine.shutdown();
    if (failed) return fail(std::to_string(failed.load()) + " starts failed");
  }

  // 2. Reopen with handlers that answer, and time resume() and the drain.
  Counts counts;
  const double cpu0 = process_cpu_seconds(0);
  const auto t0 = SteadyClock::now();
  auto opened = Engine::open(options);
  if (!opened.is_ok()) return fail(opened.status().to_string());
  auto& engine = *opened.value();
  if (Status s = engine.load(loaded.definition); !s.is_ok()) return fail(s.to_string());
  register_local(engine, counts);
  if (Status s = engine.resume(); !s.is_ok()) return fail(s.to_string());
  r.resume_seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  while (engine.stats().sagas_in_flight > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  r.seconds = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  r.cpu_seconds = process_cpu_seconds(0) - cpu0;
  r.peak_rss_mb = peak_rss_mb(0);
  engine.shutdown();
  const auto want = expected_counts(spec.sagas);
  bool ok = true;
  for (size_t i = 0; i < kPathCount; ++i) ok = ok && counts.get(static_cast<Path>(i)) == want[i];
  r.count_check = ok;
  r.count_detail = ok ? "pass" : "fail: " + counts.to_json();
  r.completed = counts.get(Path::kNotify);
  r.compensated = counts.get(Path::kReserveCancel);
  return r;
}

}  // namespace usher::bench
