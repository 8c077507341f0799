// The engine under storage faults, with in-process step services: while its
// log refuses writes it refuses new sagas with kUnavailable and says so once,
// keeps the sagas it acknowledged and finishes them once the fault clears,
// without sending again an action whose success was logged. Slow syncs and an
// outside reader holding a read transaction slow nothing down for good.
#include <doctest/doctest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "exec/engine_fixture.h"
#include "fault_vfs.h"
#include "store/open_store.h"

namespace usher {
namespace {

using namespace std::chrono_literals;
using test::FaultScope;
using test::WriteFault;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Every log line the engine writes while a test runs, through spdlog's
// default logger (which the engine uses); the previous logger is put back.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()), sink_(std::make_shared<Sink>()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("faults", sink_));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  std::vector<std::string> at(spdlog::level::level_enum level) const { return sink_->at(level); }

 private:
  class Sink final : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> at(spdlog::level::level_enum level) {
      std::lock_guard lock(mutex_);
      std::vector<std::string> out;
      for (const auto& [l, text] : lines_)
        if (l == level) out.push_back(text);
      return out;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
      lines_.emplace_back(msg.level, std::string(msg.payload.data(), msg.payload.size()));
    }
    void flush_() override {}

   private:
    std::vector<std::pair<spdlog::level::level_enum, std::string>> lines_;
  };

  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<Sink> sink_;
};

// Every call a service received: saga, step, kind and when.
class Calls {
 public:
  struct Call {
    std::string saga;
    std::string step;
    CallKind kind;
    int64_t at_us;
  };
  void add(const StepCall& c) {
    std::lock_guard lock(mu_);
    calls_.push_back({c.saga_id, c.step, c.kind, now_us()});
  }
  std::vector<Call> all() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Call> calls_;
};

// The `seats` service, holding its calls until the test opens it, so sagas
// can be caught in flight when the fault starts. Once open it answers at once.
class SeatsGate final : public StepAdapter {
 public:
  explicit SeatsGate(Calls& calls) : calls_(calls) {}
  void dispatch(StepCall call, StepCallback done) override {
    std::unique_lock lock(mu_);
    if (!open_) {
      held_.push_back({std::move(call), std::move(done)});
      cv_.notify_all();
      return;
    }
    lock.unlock();
    answer(call, done);
  }
  void wait_for_held(size_t n) {
    std::unique_lock lock(mu_);
    REQUIRE_MESSAGE(cv_.wait_for(lock, 10s, [&] { return held_.size() >= n; }), "seats got " << held_.size());
  }
  void open() {
    std::vector<std::pair<StepCall, StepCallback>> held;
    {
      std::lock_guard lock(mu_);
      open_ = true;
      held.swap(held_);
    }
    for (auto& [call, done] : held) answer(call, done);
  }

 private:
  void answer(const StepCall& call, const StepCallback& done) {
    calls_.add(call);
    if (call.kind == CallKind::kAction) {
      done(StepResult::ok({{"holdId", "h-" + std::to_string(call.body["seat"].get<int>())}}));
    } else {
      done(StepResult::ok(Json::object()));
    }
  }

  Calls& calls_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::vector<std::pair<StepCall, StepCallback>> held_;
};

// payments, tickets and notifier in process; a charge over 1000 is declined.
void register_services(Engine& engine, Calls& calls) {
  auto ok = [&calls](Json out) {
    return [&calls, out](const StepCall& c) {
      calls.add(c);
      return StepResult::ok(out);
    };
  };
  engine.register_handler("payments.charge", [&calls](const StepCall& c) {
    calls.add(c);
    if (c.body["amount"].get<int>() > 1000) return StepResult::failed("card declined");
    return StepResult::ok({{"paymentId", "p-" + c.saga_id}});
  });
  engine.register_handler("payments.refund", ok(Json::object()));
  engine.register_handler("tickets.issue", ok({{"ticketId", "t-1"}}));
  engine.register_handler("notifier.send", ok(Json::object()));
}

std::unique_ptr<Engine> open_engine(const std::string& db, const std::string& vfs) {
  EngineOptions options;
  options.db_path = db;
  options.sqlite_vfs = vfs;
  auto engine = Engine::open(options);
  REQUIRE_MESSAGE(engine.is_ok(), engine.status().to_string());
  REQUIRE(engine.value()->load(test::load_or_fail(test::kLocalBookingYaml)).is_ok());
  return std::move(engine.value());
}

Json input(int seat, int amount) { return {{"seat", seat}, {"amount", amount}}; }

StartRequest request(Json in) {
  StartRequest r;
  r.workflow = "booking";
  r.input = std::move(in);
  return r;
}

std::string expected_end(int amount) { return amount > 1000 ? "compensated" : "completed"; }

Json wait_settled(Engine& engine, const std::string& id, std::chrono::seconds limit = 30s) {
  auto settled = engine.wait(id);
  REQUIRE_MESSAGE(settled.wait_for(limit) == std::future_status::ready, "saga " << id << " did not settle");
  return settled.get();
}

// No action is sent again once its success is in the log: every call of a
// step's action happened before the StepSucceeded that logged it.
void check_no_action_resent(const std::string& db, const std::vector<std::string>& ids, const Calls& calls) {
  auto reader = open_sqlite_reader(db, true);
  REQUIRE(reader.is_ok());
  const auto all = calls.all();
  for (const auto& id : ids) {
    auto events = (*reader)->events(id);
    REQUIRE(events.is_ok());
    std::map<std::string, int> successes;
    for (const Event& e : *events) {
      if (e.type != EventType::kStepSucceeded || e.data.value("kind", "") != "action") continue;
      ++successes[e.step];
      for (const auto& c : all) {
        if (c.saga != id || c.step != e.step || c.kind != CallKind::kAction) continue;
        CHECK_MESSAGE(c.at_us <= e.occurred_at, "saga " << id << ": " << e.step << " sent again after its success");
      }
    }
    for (const auto& [step, n] : successes) CHECK_MESSAGE(n == 1, "saga " << id << ": " << step << " logged " << n);
  }
}

}  // namespace

TEST_CASE("while its log refuses writes the engine refuses new sagas, keeps the acknowledged ones, and resumes") {
  FaultScope faults;
  CapturedLog log;
  test::TempDir dir;
  const std::string db = dir.file("usher.db");
  Calls calls;
  auto gate = std::make_shared<SeatsGate>(calls);
  auto engine = open_engine(db, test::kFaultVfsName);
  register_services(*engine, calls);
  engine->bind_service("seats", gate);
  REQUIRE(engine->resume().is_ok());

  WriteFault fault = WriteFault::kIoError;
  SUBCASE("I/O error") { fault = WriteFault::kIoError; }
  SUBCASE("disk full") { fault = WriteFault::kDiskFull; }

  // Acknowledged, and waiting for `seats` when the fault starts.
  const std::vector<int> amounts = {10, 2000, 20, 3000, 30, 40};
  std::vector<std::string> ids;
  for (size_t i = 0; i < amounts.size(); ++i) {
    auto started = engine->start(request(input(static_cast<int>(i + 1), amounts[i])));
    REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
    ids.push_back(started->id);
  }
  gate->wait_for_held(ids.size());

  faults->fail_writes(fault);
  gate->open();  // every result now meets a log that cannot be written

  // New sagas are refused with kUnavailable, nothing of them written, for as
  // long as the fault lasts (several probe intervals).
  std::vector<std::string> refusals;
  const auto fault_until = std::chrono::steady_clock::now() + 2500ms;
  while (std::chrono::steady_clock::now() < fault_until) {
    auto started = engine->start(request(input(99, 5)));
    REQUIRE_FALSE_MESSAGE(started.is_ok(), "a saga was acknowledged while the log refused writes");
    CHECK(started.status().code() == StatusCode::kUnavailable);
    CHECK_MESSAGE(started.status().message().find("saga log") == 0, started.status().message());
    refusals.push_back(started.status().message());
    std::this_thread::sleep_for(100ms);
  }
  CHECK(refusals.size() >= 10);
  size_t immediate = 0;
  for (const auto& r : refusals) immediate += r.find("saga log unavailable: ") == 0;
  CHECK(immediate >= refusals.size() / 2);  // refused without trying, not after a failed commit

  // One error line for the whole episode, naming the cause, not one per saga.
  auto errors = log.at(spdlog::level::err);
  REQUIRE_MESSAGE(errors.size() == 1, "errors: " << errors.size());
  CHECK(errors[0].find("saga log unavailable") != std::string::npos);
  CHECK(errors[0].find(fault == WriteFault::kDiskFull ? "full" : "I/O") != std::string::npos);

  faults->clear();
  // Every acknowledged saga finishes by itself, the way its amount decides.
  for (size_t i = 0; i < ids.size(); ++i) {
    Json view = wait_settled(*engine, ids[i]);
    CHECK_MESSAGE(view.value("status", "") == expected_end(amounts[i]), ids[i] << ": " << view.dump());
  }
  // And new sagas are accepted again (the first may still be the probe's
  // second chance, so allow a probe interval).
  std::optional<std::string> fresh;
  for (int i = 0; i < 30 && !fresh; ++i) {
    auto started = engine->start(request(input(7, 70)));
    if (started.is_ok()) {
      fresh = started->id;
    } else {
      CHECK(started.status().code() == StatusCode::kUnavailable);
      std::this_thread::sleep_for(100ms);
    }
  }
  REQUIRE_MESSAGE(fresh, "the engine still refuses sagas after the fault cleared");
  CHECK(wait_settled(*engine, *fresh).value("status", "") == "completed");
  ids.push_back(*fresh);
  CHECK(log.at(spdlog::level::err).size() == 1);
  CHECK_FALSE(log.at(spdlog::level::info).empty());  // "writable again"

  engine->shutdown();
  check_no_action_resent(db, ids, calls);
  // Nothing else is in the log: the refused starts left no trace.
  auto reader = open_sqlite_reader(db, true);
  REQUIRE(reader.is_ok());
  auto counts = (*reader)->count_by_status();
  REQUIRE(counts.is_ok());
  int64_t total = 0;
  for (const auto& [status, n] : *counts) total += n;
  CHECK(total == static_cast<int64_t>(ids.size()));
}

TEST_CASE("slow syncs delay sagas but lose none and send nothing twice") {
  FaultScope faults;
  test::TempDir dir;
  const std::string db = dir.file("usher.db");
  Calls calls;
  auto engine = open_engine(db, test::kFaultVfsName);
  register_services(*engine, calls);
  auto gate = std::make_shared<SeatsGate>(calls);
  gate->open();
  engine->bind_service("seats", gate);
  REQUIRE(engine->resume().is_ok());
  faults->slow_syncs(30ms);

  constexpr int kSagas = 24;
  std::vector<std::promise<Result<StartResponse>>> promises(kSagas);
  for (int i = 0; i < kSagas; ++i) {
    engine->start_async(request(input(i + 1, i % 4 == 0 ? 5000 : 10 + i)),
                        [&promises, i](Result<StartResponse> r) { promises[i].set_value(std::move(r)); });
  }
  std::vector<std::string> ids;
  for (int i = 0; i < kSagas; ++i) {
    auto r = promises[i].get_future().get();
    REQUIRE_MESSAGE(r.is_ok(), r.status().to_string());
    ids.push_back(r->id);
  }
  for (int i = 0; i < kSagas; ++i) {
    CHECK(wait_settled(*engine, ids[i]).value("status", "") == expected_end(i % 4 == 0 ? 5000 : 10 + i));
  }
  // Completed: hold, charge, issue, send. Compensated: hold, charge, release.
  std::map<std::string, int> per_saga;
  for (const auto& c : calls.all()) ++per_saga[c.saga];
  for (int i = 0; i < kSagas; ++i) CHECK(per_saga[ids[i]] == (i % 4 == 0 ? 3 : 4));
  CHECK(engine->stats().commits < static_cast<uint64_t>(kSagas * 5));  // syncs were shared
  engine->shutdown();
  check_no_action_resent(db, ids, calls);
}

namespace {

// An outside reader with a read transaction open: a second connection, or
// the sqlite3 command-line shell, as an operator might leave one.
class HeldReader {
 public:
  virtual ~HeldReader() = default;
};

class ConnectionReader final : public HeldReader {
 public:
  explicit ConnectionReader(const std::string& db) {
    REQUIRE(sqlite3_open_v2(db.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK);
    before_ = count();
  }
  ~ConnectionReader() override {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close_v2(db_);
  }
  int64_t count() {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, "SELECT count(*) FROM saga_events", -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    return n;
  }
  int64_t before() const { return before_; }

 private:
  sqlite3* db_ = nullptr;
  int64_t before_ = 0;
};

class ShellReader final : public HeldReader {
 public:
  explicit ShellReader(const std::string& db) {
    const std::string cmd = "sqlite3 -readonly '" + db + "' > /dev/null";
    shell_ = ::popen(cmd.c_str(), "w");
    REQUIRE(shell_ != nullptr);
    std::fputs("BEGIN; SELECT count(*) FROM saga_events;\n", shell_);
    std::fflush(shell_);
    std::this_thread::sleep_for(200ms);  // let it take its snapshot
  }
  ~ShellReader() override {
    std::fputs("COMMIT;\n.quit\n", shell_);
    ::pclose(shell_);
  }

 private:
  FILE* shell_ = nullptr;
};

}  // namespace

TEST_CASE("an outside reader holding a read transaction does not stall the writer") {
  test::TempDir dir;
  const std::string db = dir.file("usher.db");
  Calls calls;
  auto engine = open_engine(db, "");
  register_services(*engine, calls);
  auto gate = std::make_shared<SeatsGate>(calls);
  gate->open();
  engine->bind_service("seats", gate);
  REQUIRE(engine->resume().is_ok());
  // Something in the log before the reader's snapshot.
  auto first = engine->start(request(input(1, 10)));
  REQUIRE(first.is_ok());
  wait_settled(*engine, first->id);

  std::unique_ptr<HeldReader> reader;
  ConnectionReader* connection = nullptr;
  SUBCASE("a second connection") {
    auto r = std::make_unique<ConnectionReader>(db);
    connection = r.get();
    reader = std::move(r);
  }
  SUBCASE("the sqlite3 shell") {
    if (!std::filesystem::exists("/usr/bin/sqlite3")) {
      MESSAGE("no /usr/bin/sqlite3; skipped");
      return;
    }
    reader = std::make_unique<ShellReader>(db);
  }

  const auto start = std::chrono::steady_clock::now();
  constexpr int kSagas = 100;
  for (int i = 0; i < kSagas; ++i) {
    auto started = engine->start(request(input(i + 2, 10)));
    REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
    // Each one completes while the reader holds its snapshot; a writer stalled
    // behind the reader (a checkpoint waiting for it, a lock) would time out.
    CHECK(wait_settled(*engine, started->id, 10s).value("status", "") == "completed");
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  MESSAGE(kSagas << " sagas with a reader holding a snapshot: "
                 << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  CHECK(elapsed < 60s);
  if (connection != nullptr) {
    // The reader really held one snapshot all along.
    CHECK(connection->count() == connection->before());
  }
  reader.reset();
  engine->shutdown();
}

}  // namespace usher
