// A real Engine on a temp SQLite file with in-process step handlers, and a
// way to call ApiHandler synchronously, for the trigger API tests.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "http/api_handler.h"
#include "usher/engine.h"
#include "support/temp_dir.h"

namespace usher::test {

namespace http = boost::beast::http;


// booking: reserve -> pay -> confirm (pivot) -> notify; pay declines amount > 1000.
inline const char* kBookingYaml = R"(
saga: booking
version: 2
description: Test booking.
services:
  seats:    { local: {} }
  payments: { local: {} }
  tickets:  { local: {} }
  notifier: { local: {} }
input:
  type: object
  required: [seat, amount]
  properties:
    seat: { type: string }
    amount: { type: integer, minimum: 1 }
defaults:
  timeout: 2s
  retry: { attempts: 2, backoff: 1ms, max_backoff: 5ms }
  compensation_retry: { attempts: 2, backoff: 1ms, max_backoff: 5ms }
steps:
  - name: reserve
    call: seats.hold
    with: { seat: "${input.seat}" }
    compensate:
      call: seats.release
      with: { holdId: "${steps.reserve.output.holdId:-none}" }
  - name: pay
    call: payments.charge
    with: { amount: "${input.amount}" }
    compensate:
      call: payments.refund
      with: { reference: "${saga.id}" }
  - name: confirm
    type: pivot
    call: tickets.issue
    with: { holdId: "${steps.reserve.output.holdId}" }
  - name: notify
    type: retriable
    call: notifier.send
    with: { ticketId: "${steps.confirm.output.ticketId}" }
)";

// slow: its one step answers "try again later" and backs off for a minute, so
// the saga stays running (for cancel). fragile: its compensation fails the
// first time, so a declined second step leaves the saga stuck (for retry).
inline const char* kSlowYaml = R"(
saga: slow
version: 1
services:
  waiter: { local: {} }
steps:
  - name: wait
    call: waiter.wait
    retry: { attempts: 5, backoff: 60s }
)";

inline const char* kFragileYaml = R"(
saga: fragile
version: 1
services:
  box: { local: {} }
defaults:
  retry: { attempts: 1 }
  compensation_retry: { attempts: 1 }
steps:
  - name: open
    call: box.open
    compensate:
      call: box.close
  - name: fail
    call: box.fail
)";

inline DefinitionPtr must_load(const std::string& yaml, const std::string& name) {
  LoadResult r = load_definition(yaml, name);
  for (const auto& d : r.diagnostics) MESSAGE(d.to_string());
  REQUIRE(r.ok());
  return r.definition;
}

struct ApiFixture {
  explicit ApiFixture(std::string token = "") {
    EngineOptions options;
    options.db_path = dir.file("usher.db");
    options.on_transition = [this](const TransitionInfo& t) { metrics.observe(t); };
    auto opened = Engine::open(options);
    REQUIRE_MESSAGE(opened.is_ok(), opened.status().to_string());
    engine = std::move(opened.value());
    REQUIRE(engine->load(must_load(kBookingYaml, "booking.yaml")).is_ok());
    REQUIRE(engine->load(must_load(kSlowYaml, "slow.yaml")).is_ok());
    REQUIRE(engine->load(must_load(kFragileYaml, "fragile.yaml")).is_ok());
    int holds = 0;
    engine->register_handler("seats.hold", [holds](const StepCall&) mutable {
      return StepResult::ok({{"holdId", "H-" + std::to_string(++holds)}});
    });
    engine->register_handler("seats.release", [](const StepCall&) { return StepResult::ok(Json::object()); });
    engine->register_handler("payments.charge", [](const StepCall& c) {
      if (c.body.value("amount", 0) > 1000) return StepResult::failed("card declined");
      return StepResult::ok({{"paymentId", "P-1"}});
    });
    engine->register_handler("payments.refund", [](const StepCall&) { return StepResult::ok(Json::object()); });
    engine->register_handler("tickets.issue", [](const StepCall&) { return StepResult::ok({{"ticketId", "T-1"}}); });
    engine->register_handler("notifier.send", [](const StepCall&) { return StepResult::ok(Json::object()); });
    engine->register_handler("waiter.wait", [](const StepCall&) { return StepResult::transient("busy"); });
    engine->register_handler("box.open", [](const StepCall&) { return StepResult::ok(Json::object()); });
    // Jammed the first time only: the saga gets stuck, and an operator retry
    // then compensates it (so no saga stays in memory past the test).
    engine->register_handler("box.close", [closes = 0](const StepCall&) mutable {
      return ++closes == 1 ? StepResult::failed("jammed") : StepResult::ok(Json::object());
    });
    engine->register_handler("box.fail", [](const StepCall&) { return StepResult::failed("no"); });
    REQUIRE(engine->resume().is_ok());
    api::ApiHandlerOptions ho;
    ho.token = std::move(token);
    ho.db_path = options.db_path;
    handler = std::make_unique<api::ApiHandler>(*engine, &metrics, ho);
  }
  ~ApiFixture() {
    handler->shutdown();
    // Work around an engine bug: ~EngineImpl destroys the timers of sagas
    // still in memory after its io_context (member order in engine_impl.cpp),
    // a heap-use-after-free under ASan. Cancel what still runs and wait for
    // the engine to let go of every saga before destroying it.
    for (int i = 0; i < 300 && engine->stats().sagas_in_flight > 0; ++i) {
      if (i % 20 == 0) {
        SagaFilter running;
        running.status = SagaStatus::kRunning;
        if (auto list = engine->list(running); list.is_ok())
          for (const auto& s : list.value()["sagas"]) (void)engine->cancel(s["id"].get<std::string>());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    engine->shutdown();
  }

  struct Reply {
    unsigned status = 0;
    std::string body;
    Json json;
    api::ApiResponse raw;
    std::string header(http::field f) const { return std::string(raw[f]); }
  };

  Reply call(http::verb method, const std::string& target, const std::string& body = "",
             const std::map<std::string, std::string>& headers = {}) {
    api::ApiRequest req{method, target, 11};
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    auto promise = std::make_shared<std::promise<api::ApiResponse>>();
    auto future = promise->get_future();
    handler->handle(std::move(req), [promise](api::ApiResponse r) { promise->set_value(std::move(r)); });
    REQUIRE_MESSAGE(future.wait_for(std::chrono::seconds(20)) == std::future_status::ready,
                    "no response to " << target);
    Reply r;
    r.raw = future.get();
    r.status = r.raw.result_int();
    r.body = r.raw.body();
    r.json = Json::parse(r.body, nullptr, false);
    return r;
  }
  Reply get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return call(http::verb::get, target, "", headers);
  }
  Reply post(const std::string& target, const std::string& body = "",
             const std::map<std::string, std::string>& headers = {}) {
    return call(http::verb::post, target, body, headers);
  }

  TempDir dir;
  api::ApiMetrics metrics;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<api::ApiHandler> handler;
};

}  // namespace usher::test
