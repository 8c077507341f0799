// The workflows and in-process handlers behind the trigger API's tests and its
// fuzz target (tests/adapters/http/api, tests/fuzz/api_handler_fuzz.cpp): one saga that
// completes or compensates, one that stays running (for cancel), one that gets
// stuck (for retry). Free of doctest, so the fuzz target can use it.
#pragma once

#include <string>

#include "support/booking_workflow.h"
#include "usher/engine.h"

namespace usher::test {

// booking (support/booking_workflow.h), version 2, with a string seat and
// two tries per call; pay declines amount > 1000.
inline const std::string kApiBookingYaml = [] {
  BookingWorkflow w;
  w.version = 2;
  w.description = "Test booking.";
  w.seat_schema = "{ type: string }";
  w.retry = "{ attempts: 2, backoff: 1ms, max_backoff: 5ms }";
  w.compensation_retry = "{ attempts: 2, backoff: 1ms, max_backoff: 5ms }";
  return booking_yaml(w);
}();

// slow: its one step answers "try again later" and backs off for a minute, so
// the saga stays running (for cancel).
inline const char* kApiSlowYaml = R"(
saga: slow
version: 1
services:
  waiter: { local: {} }
steps:
  - name: wait
    call: waiter.wait
    retry: { attempts: 5, backoff: 60s }
)";

// fragile: a declined second step, and the first step's compensation is
// jammed (see register_api_handlers), so the saga gets stuck (for retry).
inline const char* kApiFragileYaml = R"(
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

// How often fragile's compensation is jammed: the first time only (a test's
// operator retry then compensates the saga), or always (a fuzzer keeps
// finding stuck sagas to retry).
enum class Jammed { kOnce, kAlways };

inline void register_api_handlers(Engine& engine, Jammed jammed) {
  engine.register_handler("seats.hold", [holds = 0](const StepCall&) mutable {
    return StepResult::ok({{"holdId", "H-" + std::to_string(++holds)}});
  });
  engine.register_handler("seats.release", [](const StepCall&) { return StepResult::ok(Json::object()); });
  engine.register_handler("payments.charge", [](const StepCall& c) {
    auto amount = c.body.find("amount");
    if (amount != c.body.end() && amount->is_number_integer() && amount->get<int64_t>() > 1000)
      return StepResult::failed("card declined");
    return StepResult::ok({{"paymentId", "P-1"}});
  });
  engine.register_handler("payments.refund", [](const StepCall&) { return StepResult::ok(Json::object()); });
  engine.register_handler("tickets.issue", [](const StepCall&) { return StepResult::ok({{"ticketId", "T-1"}}); });
  engine.register_handler("notifier.send", [](const StepCall&) { return StepResult::ok(Json::object()); });
  engine.register_handler("waiter.wait", [](const StepCall&) { return StepResult::transient("busy"); });
  engine.register_handler("box.open", [](const StepCall&) { return StepResult::ok(Json::object()); });
  engine.register_handler("box.close", [jammed, closes = 0](const StepCall&) mutable {
    return ++closes == 1 || jammed == Jammed::kAlways ? StepResult::failed("jammed") : StepResult::ok(Json::object());
  });
  engine.register_handler("box.fail", [](const StepCall&) { return StepResult::failed("no"); });
}

}  // namespace usher::test
