// Back-pressure and pacing (docs/semantics.md, docs/semantics.md): new starts
// are refused while too many sagas are in memory or the log's writer is
// behind; calls to one service go out a bounded number at a time, and a call
// that waits its turn spends no attempt; a late answer never stops the timer
// of the attempt that replaced it.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <string>

#include "exec/engine_factory.h"
#include "forwarding_store.h"
#include "store/open_store.h"
#include "engine_fixture.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

// The booking workflow with a 200 ms attempt timeout.
std::string fast_timeout_yaml() {
  std::string yaml = kLocalBookingYaml;
  yaml.replace(yaml.find("timeout: 2s"), 11, "timeout: 200ms");
  return yaml;
}

struct Rig {
  explicit Rig(EngineOptions options, const std::string& yaml = kLocalBookingYaml,
               std::unique_ptr<SagaStore> log = nullptr) {
    options.db_path = saga_log_at(dir.file("usher.db"));
    if (log) {
      auto opened = open_engine_with_store(options, std::move(log));
      REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
      engine = std::move(opened.value());
    } else {
      auto opened = Engine::open(options);
      REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
      engine = std::move(opened.value());
    }
    REQUIRE(engine->load(load_or_fail(yaml)).is_ok());
    for (const char* s : {"seats", "payments", "tickets", "notifier"}) engine->bind_service(s, manual);
    REQUIRE(engine->resume().is_ok());
  }
  ~Rig() { engine->shutdown(); }

  Result<StartResponse> start(int seat) { return engine->start({"booking", {{"seat", seat}, {"amount", 10}}, "", "", ""}); }

  TempDir dir;
  std::shared_ptr<ManualAdapter> manual = std::make_shared<ManualAdapter>();
  std::unique_ptr<Engine> engine;
};

// A saga store whose writer the test can pretend is behind.
class BackloggedStore final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  SagaStoreStats stats() const override {
    SagaStoreStats s = ForwardingStore::stats();
    s.queued_events = backlog.load();
    return s;
  }
  std::atomic<uint64_t> backlog{0};
};

}  // namespace

TEST_CASE("past max_sagas_in_memory new starts are refused as unavailable, and accepted again once sagas finish") {
  EngineOptions options;
  options.max_sagas_in_memory = 2;
  Rig rig(options);
  auto first = rig.start(1);
  auto second = rig.start(2);
  REQUIRE(first.is_ok());
  REQUIRE(second.is_ok());
  auto refused = rig.start(3);
  REQUIRE(!refused.is_ok());
  CHECK(refused.status().code() == StatusCode::kUnavailable);
  CHECK(refused.status().message().find("too many sagas in flight") != std::string::npos);

  // The first saga's hold is refused outright: compensated at once, out of memory.
  auto hold = rig.manual->next();
  REQUIRE(hold.call.saga_id == first->id);
  hold.done(StepResult::failed("no such seat"));
  CHECK(rig.engine->wait(first->id).get()["status"] == "compensated");
  CHECK(rig.start(4).is_ok());
}

TEST_CASE("while the log's writer is behind, new starts are refused; sagas already running go on") {
  EngineOptions options;
  options.max_queued_events = 100;
  TempDir dir;
  auto real = open_store(saga_log_at(dir.file("usher.db")), {});
  REQUIRE(real.is_ok());
  auto* backlogged = new BackloggedStore(std::move(real.value()));
  options.db_path = saga_log_at(dir.file("usher.db"));
  auto opened = open_engine_with_store(options, std::unique_ptr<SagaStore>(backlogged));
  REQUIRE(opened.is_ok());
  auto engine = std::move(opened.value());
  auto manual = std::make_shared<ManualAdapter>();
  REQUIRE(engine->load(load_or_fail(kLocalBookingYaml)).is_ok());
  for (const char* s : {"seats", "payments", "tickets", "notifier"}) engine->bind_service(s, manual);
  REQUIRE(engine->resume().is_ok());

  auto running = engine->start({"booking", {{"seat", 1}, {"amount", 10}}, "", "", ""});
  REQUIRE(running.is_ok());
  backlogged->backlog = 100;
  auto refused = engine->start({"booking", {{"seat", 2}, {"amount", 10}}, "", "", ""});
  REQUIRE(!refused.is_ok());
  CHECK(refused.status().code() == StatusCode::kUnavailable);
  CHECK(refused.status().message().find("events behind") != std::string::npos);
  // The saga already acknowledged still has its results written.
  manual->next().done(StepResult::failed("no such seat"));
  CHECK(engine->wait(running->id).get()["status"] == "compensated");
  backlogged->backlog = 0;
  CHECK(engine->start({"booking", {{"seat", 3}, {"amount", 10}}, "", "", ""}).is_ok());
  engine->shutdown();
}

TEST_CASE("calls to one service wait their turn, and waiting spends no attempt") {
  EngineOptions options;
  options.max_calls_in_flight_per_service = 1;
  Rig rig(options, fast_timeout_yaml());
  auto first = rig.start(1);
  REQUIRE(first.is_ok());
  auto first_hold = rig.manual->next();
  auto second = rig.start(2);
  REQUIRE(second.is_ok());
  // The seats service has its one call out: the second hold waits in the
  // engine, longer than its own 200 ms timeout, without being sent.
  CHECK_FALSE(rig.manual->try_next(600ms).has_value());
  // The first call answers late (its attempt timed out meanwhile): its slot
  // goes to the second saga's hold, still its first attempt.
  first_hold.done(StepResult::ok({{"holdId", "late"}}));
  auto second_hold = rig.manual->next();
  CHECK(second_hold.call.saga_id == second->id);
  CHECK(second_hold.call.attempt == 1);
  second_hold.done(StepResult::failed("no such seat"));
  CHECK(rig.engine->wait(second->id).get()["status"] == "compensated");
  // Then the first saga's retry, which queued behind it.
  auto retry = rig.manual->next();
  CHECK(retry.call.saga_id == first->id);
  CHECK(retry.call.attempt == 2);
  retry.done(StepResult::failed("no such seat"));
  // Its first attempt timed out, so the hold may exist: it is released.
  auto release = rig.manual->next();
  CHECK(release.call.kind == CallKind::kCompensate);
  CHECK(release.call.saga_id == first->id);
  release.done(StepResult::ok({}));
  CHECK(rig.engine->wait(first->id).get()["status"] == "compensated");
}

TEST_CASE("a late answer of a timed-out attempt does not stop the timer of the attempt that replaced it") {
  Rig rig(EngineOptions{}, fast_timeout_yaml());
  auto started = rig.start(1);
  REQUIRE(started.is_ok());
  auto attempt1 = rig.manual->next();  // never answered in time: times out after 200 ms
  auto attempt2 = rig.manual->next();
  CHECK(attempt2.call.attempt == 2);
  attempt1.done(StepResult::ok({{"holdId", "late"}}));  // dropped: attempt 2 is the one in flight
  // Attempt 2 is not answered either: its own timeout still fires.
  auto attempt3 = rig.manual->try_next(3s);
  REQUIRE(attempt3.has_value());
  CHECK(attempt3->call.attempt == 3);
  attempt3->done(StepResult::ok({{"holdId", "h-1"}}));
  attempt2.done(StepResult::ok({}));  // late too; every call is answered before shutdown
  auto pay = rig.manual->next();
  CHECK(pay.call.step == "pay");
  pay.done(StepResult::failed("declined"));
  auto release = rig.manual->next();
  CHECK(release.call.body == Json{{"holdId", "h-1"}});
  release.done(StepResult::ok({}));
  CHECK(rig.engine->wait(started->id).get()["status"] == "compensated");
}
