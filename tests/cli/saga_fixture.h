// A saga log with known sagas in it, written by a real engine with in-process
// handlers, then closed, for the CLI to read: one completed (after a transient
// failure), one compensated after a decline at step 2, one compensated after a
// refusal at the pivot (two compensations), one stuck after its pivot, and one
// still running. The clock steps one second per reading, so every decision has
// its own time and `show --at` can cut between them.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "cli_test_util.h"
#include "support/booking_workflow.h"
#include "support/test_store.h"
#include "usher/engine.h"

namespace usher::test {

// 2026-01-02T03:04:05Z, then one second more on every reading.
class SteppingClock final : public Clock {
 public:
  int64_t now_us() override { return next_.fetch_add(1'000'000); }

 private:
  std::atomic<int64_t> next_{1'767'323'045'000'000};
};

// The booking workflow (support/booking_workflow.h) without an input schema:
// the ticket is issued for the seat, the message goes to the user.
inline const std::string kBookingYaml = [] {
  BookingWorkflow w;
  w.version = 2;
  w.description = "A seat, a payment, a ticket and a message, all in-process.";
  w.seat_schema = "";
  w.timeout = "5s";
  w.retry = "{ attempts: 3, backoff: 10ms }";
  w.compensation_retry = "{ attempts: 3, backoff: 10ms }";
  w.confirm_with = R"({ seat: "${input.seat}" })";
  w.notify_with = R"({ user: "${input.user}" })";
  w.notify_retry = "{ attempts: 2, backoff: 10ms }";
  return booking_yaml(w);
}();

inline constexpr const char* kWaitlistYaml = R"(saga: waitlist
version: 1
services:
  queue: { local: {} }
steps:
  - name: enqueue
    call: queue.join
    retry: { attempts: unlimited, backoff: 1h, max_backoff: 1h }
)";

struct SagaFixture {
  TempDir dir;
  std::string db;
  std::string completed, compensated, refused_at_pivot, stuck, running;
  // What the engine answered while it was open, to compare the CLI's JSON with.
  Json completed_saga, compensated_saga, compensated_events;

  SagaFixture() : db(saga_log_at(dir.file("usher.db"))) {
    SteppingClock clock;
    EngineOptions options;
    options.db_path = db;
    options.clock = &clock;
    options.seed = 42;
    auto opened = Engine::open(options);
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    std::unique_ptr<Engine> engine = std::move(opened.value());
    for (const std::string& yaml : {kBookingYaml, std::string(kWaitlistYaml)}) {
      LoadResult loaded = load_definition(yaml, "fixture.yaml");
      REQUIRE_MESSAGE(loaded.ok(), (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].to_string()));
      REQUIRE(engine->load(loaded.definition).is_ok());
    }
    auto holds = std::make_shared<std::atomic<int>>(0);
    engine->register_handler("seats.hold", [holds](const StepCall& call) {
      // Seat A1 is busy on the first try: a transient failure, then a retry.
      if (call.body.value("seat", "") == "A1" && holds->fetch_add(1) == 0) return StepResult::transient("HTTP 503");
      return StepResult::ok({{"holdId", "hold-" + call.body.value("seat", "")}});
    });
    engine->register_handler("seats.release", [](const StepCall&) { return StepResult::ok(Json::object()); });
    engine->register_handler("payments.charge", [](const StepCall& call) {
      if (call.body.value("amount", 0) > 1000) return StepResult::failed("card declined");
      return StepResult::ok({{"paymentId", "pay-1"}});
    });
    engine->register_handler("payments.refund", [](const StepCall&) { return StepResult::ok(Json::object()); });
    engine->register_handler("tickets.issue", [](const StepCall& call) {
      if (call.body.value("seat", "") == "Z9") return StepResult::failed("sold out");
      return StepResult::ok({{"ticketId", "t-" + call.body.value("seat", "")}});
    });
    engine->register_handler("notifier.send", [](const StepCall& call) {
      if (call.body.value("user", "") == "offline") return StepResult::transient("HTTP 503");
      return StepResult::ok(Json::object());
    });
    engine->register_handler("queue.join", [](const StepCall&) { return StepResult::transient("queue full"); });
    REQUIRE(engine->resume().is_ok());

    auto run = [&](const char* workflow, Json input) {
      StartRequest request;
      request.workflow = workflow;
      request.input = std::move(input);
      auto started = engine->start(std::move(request));
      REQUIRE_MESSAGE(started.is_ok(), started.status().to_string());
      return started->id;
    };
    // The settled saga as one saga's answer shows it (GET /v1/sagas/{id},
    // `usher show`): with each call's request, which wait() leaves out.
    auto settle = [&](const std::string& id) {
      auto done = engine->wait(id);
      REQUIRE(done.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
      done.get();
      auto saga = engine->get(id);
      REQUIRE(saga.is_ok());
      return saga.value();
    };
    completed = run("booking", {{"seat", "A1"}, {"amount", 100}, {"user", "ann"}});
    completed_saga = settle(completed);
    compensated = run("booking", {{"seat", "B2"}, {"amount", 5000}, {"user", "bob"}});
    compensated_saga = settle(compensated);
    refused_at_pivot = run("booking", {{"seat", "Z9"}, {"amount", 20}, {"user", "cat"}});
    settle(refused_at_pivot);
    stuck = run("booking", {{"seat", "C3"}, {"amount", 30}, {"user", "offline"}});
    settle(stuck);
    running = run("waitlist", Json::object());
    // Wait until its first attempt failed, so the log shows a retry pending.
    for (int i = 0; i < 500; ++i) {
      auto saga = engine->get(running);
      if (saga.is_ok() && saga.value()["steps"][0]["attempts"].get<int>() >= 1 &&
          !saga.value()["steps"][0]["error"].is_null())
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    auto events = engine->events(compensated);
    REQUIRE(events.is_ok());
    compensated_events = events.value();
    engine->shutdown();
  }
};

// Built once: every test reads the same closed log.
inline const SagaFixture& fixture() {
  static SagaFixture f;
  return f;
}

}  // namespace usher::test
