// Crash recovery. Two ways of dying:
//  - a saga log wrapper that "crashes" right after the N-th append is durable
//    (its commands never run, nothing later reaches the disk), for every N of
//    every shipped workflow, on the success path and on each failure path;
//  - a child process running sagas, killed with SIGKILL at a random moment.
// Then the database is reopened and every saga must finish correctly, and no
// action whose success was logged may be sent again.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iterator>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "exec/engine_factory.h"
#include "machine/workflow_samples.h"
#include "engine_fixture.h"
#include "forwarding_store.h"
#include "store/open_store.h"
#include "usher/inspect.h"

using namespace usher;
using namespace usher::test;

namespace {

class CrashingStore final : public ForwardingStore {
 public:
  CrashingStore(std::unique_ptr<SagaStore> inner, int crash_at) : ForwardingStore(std::move(inner)), crash_at_(crash_at) {}

  void append(std::vector<Event> events, std::vector<SagaRow> rows, std::function<void(Status)> done) override {
    if (crashed_) return;  // the process is gone
    if (++appends_ == crash_at_) {
      crashed_ = true;
      // Written and synced, but the process dies before it can act on it.
      inner().append(std::move(events), std::move(rows), [](Status) {});
      return;
    }
    inner().append(std::move(events), std::move(rows), std::move(done));
  }

  bool crashed() const { return crashed_; }
  int appends() const { return appends_; }

 private:
  int crash_at_;
  std::atomic<int> appends_{0};
  std::atomic<bool> crashed_{false};
};

// Answers every call of a workflow in process: success with the outputs later
// steps read, except the action of `fail_step`, which is refused. Records what
// it was asked, as "step:action" / "step:compensate".
class ScriptedServices final : public StepAdapter {
 public:
  ScriptedServices(const Definition& def, std::string fail_step, const std::atomic<bool>* dead)
      : outputs_(sample_outputs(def)), fail_step_(std::move(fail_step)), dead_(dead) {}

  void dispatch(StepCall call, StepCallback done) override {
    if (dead_ && *dead_) return;  // a dead process sends nothing
    {
      std::lock_guard lock(mu_);
      calls_.push_back(call.step + ":" + call_kind_name(call.kind));
    }
    if (call.kind == CallKind::kAction && call.step == fail_step_) return done(StepResult::failed("refused"));
    done(StepResult::ok(call.kind == CallKind::kAction ? outputs_.at(call.step) : Json::object()));
  }
  std::vector<std::string> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::map<std::string, Json> outputs_;
  std::string fail_step_;
  const std::atomic<bool>* dead_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
};

void bind_all(Engine& engine, const Definition& def, const StepAdapterPtr& adapter) {
  for (const auto& [name, service] : def.services) engine.bind_service(name, adapter);
}

// Actions the log says succeeded, as "step:action".
std::set<std::string> logged_successes(const std::string& db, const std::string& id) {
  std::set<std::string> out;
  auto inspector = LogInspector::open(db);
  REQUIRE(inspector.is_ok());
  auto events = (*inspector)->events(id);
  if (!events.is_ok()) return out;
  for (const auto& e : (*events)["events"])
    if (e["type"] == "StepSucceeded" && e["data"]["kind"] == "action") out.insert(e["step"].get<std::string>() + ":action");
  return out;
}

Json only_saga(const std::string& db) {
  auto inspector = LogInspector::open(db);
  REQUIRE(inspector.is_ok());
  auto list = (*inspector)->list(SagaFilter{});
  REQUIRE(list.is_ok());
  return (*list)["sagas"].empty() ? Json(nullptr) : (*list)["sagas"][0];
}

struct Run {
  int appends = 0;
  bool crashed = false;
};

// Starts one saga on a fresh engine whose log dies after append `crash_at`.
Run run_until_crash(const std::string& db, const DefinitionPtr& def, const std::string& fail_step, int crash_at) {
  EngineOptions options;
  options.db_path = db;
  auto inner = open_store(db, {});
  REQUIRE(inner.is_ok());
  auto* crashing = new CrashingStore(std::move(inner.value()), crash_at);
  auto engine_or = open_engine_with_store(options, std::unique_ptr<SagaStore>(crashing));
  REQUIRE(engine_or.is_ok());
  auto engine = std::move(engine_or.value());
  std::atomic<bool> dead{false};
  auto services = std::make_shared<ScriptedServices>(*def, fail_step, &dead);
  REQUIRE(engine->load(def).is_ok());
  bind_all(*engine, *def, services);
  REQUIRE(engine->resume().is_ok());
  engine->start_async({def->name, def->input_schema ? sample_for_schema(*def->input_schema) : Json::object(), "",
                       "", ""},
                      [](Result<StartResponse> r) {
                        if (!r.is_ok()) MESSAGE("start failed: " << r.status().to_string());
                      });
  // Until the crash, or until the saga finished without one.
  for (int i = 0; i < 5000; ++i) {
    if (crashing->crashed()) break;
    Json saga = only_saga(db);
    if (!saga.is_null() && (saga["status"] == "completed" || saga["status"] == "compensated")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  dead = crashing->crashed();
  Run run{crashing->appends(), crashing->crashed()};
  engine->shutdown();
  return run;
}

}  // namespace

TEST_CASE("a crash between any append and its commands loses nothing and repeats no logged action") {
  int runs = 0;
  for (const DefinitionPtr& def : shipped_workflows()) {
    // Every way the saga can go: all steps succeed, or one step is refused.
    std::vector<std::string> fail_steps = {""};
    for (const auto& step : def->steps)
      if (step.type != StepType::kRetriable) fail_steps.push_back(step.name);
    for (const std::string& fail_step : fail_steps) {
      std::string expected = fail_step.empty() ? "completed" : "compensated";
      int total = 0;
      {
        TempDir dir;
        total = run_until_crash(saga_log_at(dir.file("usher.db")), def, fail_step, 1 << 30).appends;
        REQUIRE(only_saga(saga_log_at(dir.file("usher.db")))["status"] == expected);
      }
      for (int crash_at = 1; crash_at <= total; ++crash_at) {
        CAPTURE(def->name);
        CAPTURE(fail_step);
        CAPTURE(crash_at);
        TempDir dir;
        std::string db = saga_log_at(dir.file("usher.db"));
        Run run = run_until_crash(db, def, fail_step, crash_at);
        CHECK(run.crashed);
        Json before = only_saga(db);
        REQUIRE(!before.is_null());
        std::set<std::string> done_before = logged_successes(db, before["id"]);

        auto engine = open_engine(db);
        auto services = std::make_shared<ScriptedServices>(*def, fail_step, nullptr);
        bind_all(*engine, *def, services);  // the definition comes back from the log
        REQUIRE(engine->resume().is_ok());
        Json after = engine->wait(before["id"]).get();
        // Secrets (`redact:`) do not survive the crash: a saga whose step that
        // reads one had not succeeded yet cannot send it, and compensates.
        bool secret_lost = false;
        for (const Step& step : def->steps)
          if (!step.action.reads_redacted.empty() && done_before.count(step.name + ":action") == 0) secret_lost = true;
        // A failing pivot that was in flight at the crash may have happened
        // before it: the saga waits for an operator instead of compensating.
        bool pivot_in_doubt = false;
        for (const Json& step : before["steps"])
          if (def->pivot && step["name"] == def->steps[*def->pivot].name && step["name"] == fail_step &&
              step["status"] == "running")
            pivot_in_doubt = true;
        CHECK(after["status"] == (secret_lost ? "compensated" : pivot_in_doubt ? "stuck" : expected));
        for (const std::string& call : services->calls())
          CHECK_MESSAGE(done_before.count(call) == 0, "sent again after its success was logged: " << call);
        engine->shutdown();
        ++runs;
      }
    }
  }
  MESSAGE("crash points tested: " << runs);
  CHECK(runs > 30);
}

TEST_CASE("sagas acknowledged by a process killed with SIGKILL all finish after a restart") {
  for (int round = 0; round < 3; ++round) {
    TempDir dir;
    std::string db = saga_log_at(dir.file("usher.db"));
    std::string acked_file = dir.file("acked");
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      // The child: start sagas one after another, forever, writing each
      // acknowledged id to a file (write(2) survives SIGKILL: it is in the kernel).
      int fd = ::open(acked_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      CallLog calls;
      EngineOptions options;
      options.db_path = db;
      auto engine = Engine::open(options);
      if (!engine.is_ok() || fd < 0) ::_exit(2);
      if (!(*engine)->load(load_definition(kLocalBookingYaml, "b.yaml").definition).is_ok()) ::_exit(3);
      register_booking_handlers(**engine, calls);
      if (!(*engine)->resume().is_ok()) ::_exit(4);
      std::vector<std::future<Json>> pending;
      for (int i = 1;; ++i) {
        int amount = i % 4 == 0 ? 5000 : 10;  // every fourth booking is declined and compensated
        auto started = (*engine)->start({"booking", {{"seat", i}, {"amount", amount}}, "", "", ""});
        if (!started.is_ok()) ::_exit(5);
        std::string line = started->id + "\n";
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(6);
      }
    }
    // Kill it a random moment after it has had a few sagas acknowledged, so the
    // test means the same on a fast and on a loaded machine.
    auto acked_lines = [&] {
      std::ifstream in(acked_file);
      return std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
    };
    for (int i = 0; i < 3000 && acked_lines() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::mt19937 rng(round + 7);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 200)(rng)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(WIFSIGNALED(status));

    std::vector<std::string> acked;
    std::ifstream in(acked_file);
    for (std::string line; std::getline(in, line);)
      if (line.size() == 36) acked.push_back(line);
    REQUIRE(acked.size() > 3);
    std::map<std::string, std::set<std::string>> done_before;
    for (const auto& id : acked) done_before[id] = logged_successes(db, id);

    auto engine = open_engine(db);
    CallLog calls;
    register_booking_handlers(*engine, calls);
    REQUIRE(engine->resume().is_ok());
    int completed = 0, compensated = 0;
    for (const auto& id : acked) {
      Json saga = engine->wait(id).get();
      REQUIRE_MESSAGE(saga.is_object(), "acknowledged saga " << id << " is not in the log");
      bool declined = saga["input"]["amount"] == 5000;
      CHECK(saga["status"] == (declined ? "compensated" : "completed"));
      (declined ? compensated : completed)++;
      std::map<std::string, std::string> op_to_step = {{"seats.hold", "reserve:action"},
                                                       {"payments.charge", "pay:action"},
                                                       {"tickets.issue", "confirm:action"},
                                                       {"notifier.send", "notify:action"}};
      for (const auto& call : calls.for_saga(id)) {
        auto step = op_to_step.find(call);
        if (step != op_to_step.end())
          CHECK_MESSAGE(done_before[id].count(step->second) == 0, id << ": " << call << " sent again");
      }
    }
    MESSAGE("round " << round << ": " << acked.size() << " acknowledged sagas, " << completed << " completed, "
                     << compensated << " compensated after SIGKILL");
    engine->shutdown();
  }
}
