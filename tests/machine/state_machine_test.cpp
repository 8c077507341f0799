// The state machine, transition by transition, on a simulated clock.
#include <doctest/doctest.h>

#include "machine/sim.h"
#include "usher/event_data.h"
#include "usher/service_text.h"

using namespace usher;
using namespace usher::test;

namespace {

const Json kInput = {{"concertId", "c-42"}, {"seat", 7}, {"amount", 120}};

Sim booking() { return Sim(must_load(kBookingYaml)); }

// Runs the booking forward until `step` is in flight.
void run_until(Sim& sim, const std::string& step) {
  sim.start(kInput);
  if (step == "reserve") return;
  sim.ok("reserve", {{"holdId", "h-1"}});
  if (step == "pay") return;
  sim.ok("pay", {{"paymentId", "p-1"}});
  if (step == "confirm") return;
  sim.ok("confirm", {{"ticketId", "t-1"}});
}

}  // namespace

TEST_CASE("a saga whose steps all succeed completes, passing outputs forward") {
  Sim sim = booking();
  Decision d = sim.start(kInput);
  CHECK(types(d) == std::vector<std::string>{"SagaStarted", "StepScheduled"});
  CHECK(sim.state.status == SagaStatus::kRunning);
  const DispatchCommand* first = dispatch_of(d);
  REQUIRE(first);
  CHECK(first->step == 0);
  CHECK(first->attempt == 1);
  CHECK(first->body == Json{{"concertId", "c-42"}, {"seat", 7}});  // the seat stays an integer
  CHECK(d.events[1].data["deadline"] == sim.now + 5 * kSecond);
  REQUIRE(timer_of(d, TimerKind::kDeadline));
  CHECK(timer_of(d, TimerKind::kDeadline)->at == sim.now + 60 * kSecond);

  d = sim.ok("reserve", {{"holdId", "h-1"}});
  CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "StepScheduled"});
  CHECK(dispatch_of(d)->body == Json{{"amount", 120}, {"reference", "saga-1"}});

  sim.ok("pay", {{"paymentId", "p-1"}});
  CHECK(sim.state.steps[2].action.in_flight);
  d = sim.ok("confirm", {{"ticketId", "t-1"}});
  CHECK(sim.state.pivot_succeeded);
  CHECK(dispatch_of(d)->body == Json{{"ticketId", "t-1"}});

  d = sim.ok("notify");
  CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "SagaCompleted"});
  CHECK(settled_with(d, SagaStatus::kCompleted));
  CHECK(sim.state.status == SagaStatus::kCompleted);
  Json v = sim.view();
  CHECK(v["status"] == "completed");
  CHECK(v["steps"][0]["output"] == Json{{"holdId", "h-1"}});
  CHECK(v["steps"][3]["status"] == "succeeded");
  CHECK(v["error"].is_null());
}

TEST_CASE("compensates completed steps in reverse order when a step fails") {
  SUBCASE("business failure at step 2 undoes step 1") {
    Sim sim = booking();
    run_until(sim, "pay");
    Decision d = sim.result("pay", StepResult::failed("422 card declined"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"reserve"}));  // pay was refused: nothing to undo
    CHECK(sim.state.status == SagaStatus::kCompensating);
    REQUIRE(dispatch_of(d));
    CHECK(dispatch_of(d)->kind == CallKind::kCompensate);
    CHECK(dispatch_of(d)->body == Json{{"holdId", "h-1"}});
    CHECK(sim.step_status("pay") == "failed");
    CHECK(sim.step_status("reserve") == "compensating");

    d = sim.comp_ok("reserve");
    CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "SagaCompensated"});
    CHECK(settled_with(d, SagaStatus::kCompensated));
    CHECK(sim.step_status("reserve") == "compensated");
    CHECK(sim.view()["steps"][0]["compensation"]["status"] == "succeeded");
  }
  SUBCASE("business failure at step 3 (the pivot) undoes steps 2 then 1") {
    Sim sim = booking();
    run_until(sim, "confirm");
    Decision d = sim.result("confirm", StepResult::failed("409 seat gone"));
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
    CHECK(dispatch_of(d)->step == 1);
    sim.comp_ok("pay");
    CHECK(sim.state.steps[0].compensation.in_flight);
    sim.comp_ok("reserve");
    CHECK(sim.state.status == SagaStatus::kCompensated);
    CHECK(sim.trace() == std::vector<std::string>{
                             "SagaStarted", "StepScheduled reserve", "StepSucceeded reserve", "StepScheduled pay",
                             "StepSucceeded pay", "StepScheduled confirm", "StepFailed confirm", "CompensationStarted",
                             "StepScheduled pay/compensate", "StepSucceeded pay/compensate",
                             "StepScheduled reserve/compensate", "StepSucceeded reserve/compensate",
                             "SagaCompensated"});
  }
}

TEST_CASE("transient failures are retried with exponential backoff and full jitter") {
  Sim sim = booking();
  sim.start(kInput);
  int64_t t0 = sim.now;
  Decision d = sim.result("reserve", StepResult::transient("503"));
  CHECK(types(d) == std::vector<std::string>{"StepFailed", "RetryScheduled"});
  // First retry waits jitter * backoff = 0.5 * 200ms.
  REQUIRE(timer_of(d, TimerKind::kRetry));
  CHECK(timer_of(d, TimerKind::kRetry)->at == t0 + 100 * kMs);
  CHECK(sim.step_status("reserve") == "running");

  d = sim.retry_timer("reserve");
  CHECK(types(d) == std::vector<std::string>{"StepScheduled"});
  CHECK(dispatch_of(d)->attempt == 2);

  sim.jitter = 1.0;
  int64_t t1 = sim.now;
  d = sim.result("reserve", StepResult::transient("503"));
  CHECK(timer_of(d, TimerKind::kRetry)->at == t1 + 400 * kMs);  // 200ms * 2^1, full
  sim.retry_timer("reserve");

  SUBCASE("then success carries on with the same step") {
    d = sim.ok("reserve", {{"holdId", "h-9"}});
    CHECK(sim.state.steps[0].action.attempts == 3);
    CHECK(sim.state.steps[1].action.in_flight);
  }
  SUBCASE("until the attempts are spent: then the step itself is compensated too") {
    d = sim.result("reserve", StepResult::transient("503"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"reserve"}));
    // Its own output is unknown: the release is sent with a null hold id.
    CHECK(dispatch_of(d)->body == Json{{"holdId", nullptr}});
  }
}

TEST_CASE("the backoff is capped and a Retry-After is honoured") {
  RetryPolicy p{10, Millis(200), 2.0, Millis(1000)};
  CHECK(retry_delay(p, 1, 1.0, std::nullopt) == Millis(200));
  CHECK(retry_delay(p, 3, 1.0, std::nullopt) == Millis(800));
  CHECK(retry_delay(p, 4, 1.0, std::nullopt) == Millis(1000));
  CHECK(retry_delay(p, 60, 1.0, std::nullopt) == Millis(1000));
  CHECK(retry_delay(p, 2, 0.0, std::nullopt) == Millis(0));
  CHECK(retry_delay(p, 1, 0.5, Millis(3000)) == Millis(3000));

  Sim sim = booking();
  sim.start(kInput);
  int64_t t0 = sim.now;
  Decision d = sim.result("reserve", StepResult::transient("429", Millis(2500)));
  CHECK(timer_of(d, TimerKind::kRetry)->at == t0 + 2500 * kMs);
  CHECK(d.events[0].data["retry_after_ms"] == 2500);
}

TEST_CASE("a step that times out is unknown, retried, and compensated when it gives up") {
  Sim sim = booking();
  run_until(sim, "pay");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    Decision d = sim.attempt_timeout("pay");
    CHECK(d.events[0].data["outcome"] == "timeout");
    if (attempt < 3) {
      CHECK(sim.step_status("pay") == "running");
      sim.retry_timer("pay");
    } else {
      // It may have happened: compensated along with reserve, last first.
      CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
    }
  }
  CHECK(sim.state.status == SagaStatus::kCompensating);
  CHECK(sim.view()["steps"][1]["error"] == "no answer within 5s");
  sim.comp_ok("pay");
  sim.comp_ok("reserve");
  CHECK(sim.state.status == SagaStatus::kCompensated);
}

TEST_CASE("a late result of a superseded attempt is ignored") {
  Sim sim = booking();
  sim.start(kInput);
  sim.attempt_timeout("reserve");
  sim.retry_timer("reserve");
  Decision d = sim.feed(Input{0, 0, ResultInput{0, CallKind::kAction, 1, StepResult::ok({{"holdId", "old"}})}});
  CHECK(d.events.empty());
  CHECK(d.ignored.find("late result") != std::string::npos);
  CHECK(sim.state.steps[0].action.in_flight);
}

TEST_CASE("a compensation that keeps failing leaves the saga stuck until an operator retries it") {
  Sim sim = booking();
  run_until(sim, "pay");
  sim.result("pay", StepResult::failed("declined"));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    Decision d = sim.result("reserve", StepResult::transient("503 seats down"), CallKind::kCompensate);
    if (attempt < 3) {
      CHECK(types(d) == std::vector<std::string>{"StepFailed", "RetryScheduled"});
      // Compensations use their own policy: 1s, then 2s (jitter 0.5 halves them).
      CHECK(timer_of(d, TimerKind::kRetry)->at == sim.now + (attempt == 1 ? 500 : 1000) * kMs);
      sim.retry_timer("reserve", CallKind::kCompensate);
    } else {
      CHECK(types(d) == std::vector<std::string>{"StepFailed", "SagaStuck"});
      CHECK(settled_with(d, SagaStatus::kStuck));
    }
  }
  CHECK(sim.state.status == SagaStatus::kStuck);
  Json v = sim.view();
  CHECK(v["status"] == "stuck");
  CHECK(v["steps"][0]["compensation"]["status"] == "failed");
  CHECK(v["error"] == "503 seats down");

  Decision d = sim.operator_retry();
  CHECK(types(d) == std::vector<std::string>{"OperatorRetried", "StepScheduled"});
  CHECK(dispatch_of(d)->kind == CallKind::kCompensate);
  CHECK(dispatch_of(d)->attempt == 4);
  CHECK(sim.state.status == SagaStatus::kCompensating);
  sim.comp_ok("reserve");
  CHECK(sim.state.status == SagaStatus::kCompensated);
}

TEST_CASE("a compensation refused outright is stuck at once") {
  Sim sim = booking();
  run_until(sim, "pay");
  sim.result("pay", StepResult::failed("declined"));
  Decision d = sim.result("reserve", StepResult::failed("404 no such hold"), CallKind::kCompensate);
  CHECK(types(d) == std::vector<std::string>{"StepFailed", "SagaStuck"});
}

TEST_CASE("an operator retry is refused unless the saga is stuck") {
  Sim sim = booking();
  sim.start(kInput);
  Decision d = sim.operator_retry();
  REQUIRE(d.refused);
  CHECK(d.refused->code() == StatusCode::kFailedPrecondition);
  CHECK(d.refused->message() == "saga is running, only a stuck saga can be retried (cancel stops a running saga)");
}

TEST_CASE("cancel before the pivot compensates; after it, cancel is refused") {
  SUBCASE("while a step is in flight, cancel waits for its result, then undoes it") {
    Sim sim = booking();
    run_until(sim, "pay");
    Decision d = sim.cancel();
    CHECK(types(d) == std::vector<std::string>{"CancelRequested"});
    CHECK(sim.state.status == SagaStatus::kRunning);
    d = sim.ok("pay", {{"paymentId", "p-1"}});
    CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
    CHECK(d.events[1].data["reason"] == "cancelled by request");
  }
  SUBCASE("while waiting to retry, cancel compensates at once") {
    Sim sim = booking();
    run_until(sim, "pay");
    sim.result("pay", StepResult::transient("503"));
    Decision d = sim.cancel();
    CHECK(types(d) == std::vector<std::string>{"CancelRequested", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
    CHECK(sim.retry_timer("pay").ignored == "retry timer no longer needed");
  }
  SUBCASE("once the pivot was sent, cancel is refused") {
    Sim sim = booking();
    run_until(sim, "confirm");
    Decision d = sim.cancel();
    REQUIRE(d.refused);
    CHECK(d.refused->code() == StatusCode::kFailedPrecondition);
    CHECK(d.refused->message() == "the pivot step \"confirm\" was already sent; the saga can only go forward");
    CHECK(d.events.empty());
  }
  SUBCASE("a finished saga cannot be cancelled") {
    Sim sim = booking();
    run_until(sim, "pay");
    sim.result("pay", StepResult::failed("declined"));
    sim.comp_ok("reserve");
    Decision d = sim.cancel();
    REQUIRE(d.refused);
    CHECK(d.refused->message() == "saga is compensated, only a running saga can be cancelled");
  }
}

TEST_CASE("the saga deadline waits for the attempt in flight, then compensates it with its real output") {
  Sim sim = booking();
  run_until(sim, "pay");
  Decision d = sim.deadline();
  // Nothing is decided, and above all no compensation is sent, while the
  // action is still running at the service.
  CHECK(d.events.empty());
  CHECK(d.commands.empty());
  CHECK(sim.state.status == SagaStatus::kRunning);

  SUBCASE("the action's answer arrives: not retried, undone with its output") {
    d = sim.ok("pay", {{"paymentId", "p-9"}});
    CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
    CHECK(d.events[1].data["reason"] == "saga deadline exceeded");
    REQUIRE(dispatch_of(d));
    CHECK(dispatch_of(d)->kind == CallKind::kCompensate);
    CHECK(dispatch_of(d)->body == Json{{"paymentId", "p-9"}});
  }
  SUBCASE("the action's own timeout: not retried, compensated as it may have happened") {
    d = sim.attempt_timeout("pay");
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
  }
  SUBCASE("a transient answer: not retried past the deadline") {
    d = sim.result("pay", StepResult::transient("503"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
  }
  SUBCASE("a retry that was waiting is dropped and compensation starts at once") {
    Sim other = booking();
    run_until(other, "pay");
    other.result("pay", StepResult::transient("503"));
    d = other.deadline();
    CHECK(types(d) == std::vector<std::string>{"CompensationStarted", "StepScheduled"});
    CHECK(other.retry_timer("pay").ignored == "retry timer no longer needed");
  }
  SUBCASE("after the pivot the deadline no longer applies") {
    Sim other = booking();
    run_until(other, "notify");
    CHECK(other.deadline().events.empty());
  }
}

TEST_CASE("what may have happened stays so: later answers cannot take it back") {
  SUBCASE("a pivot that timed out and then got 503s is stuck, never compensated") {
    Sim sim = booking();
    run_until(sim, "confirm");
    sim.attempt_timeout("confirm");
    sim.retry_timer("confirm");
    sim.result("confirm", StepResult::transient("503"));
    sim.retry_timer("confirm");
    Decision d = sim.result("confirm", StepResult::transient("503"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "SagaStuck"});
    CHECK(sim.state.status == SagaStatus::kStuck);
    CHECK(d.events[1].data["error"].get<std::string>().find("may have happened") != std::string::npos);
    CHECK(sim.step_status("confirm") == "unknown");
  }
  SUBCASE("a pivot that timed out and then was refused is stuck too") {
    Sim sim = booking();
    run_until(sim, "confirm");
    sim.attempt_timeout("confirm");
    sim.retry_timer("confirm");
    Decision d = sim.result("confirm", StepResult::failed("409 in progress"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "SagaStuck"});
  }
  SUBCASE("a pivot refused with 503s only (definite answers) is compensated") {
    Sim sim = booking();
    run_until(sim, "confirm");
    for (int i = 0; i < 2; ++i) {
      sim.result("confirm", StepResult::transient("503"));
      sim.retry_timer("confirm");
    }
    Decision d = sim.result("confirm", StepResult::transient("503"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
  }
  SUBCASE("a step that timed out and then got a 409 is still compensated") {
    Sim sim = booking();
    sim.start(kInput);
    sim.attempt_timeout("reserve");
    sim.retry_timer("reserve");
    Decision d = sim.result("reserve", StepResult::failed("409 in progress"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"reserve"}));
  }
  SUBCASE("a step refused outright (one definite 4xx) is not compensated") {
    Sim sim = booking();
    run_until(sim, "pay");
    Decision d = sim.result("pay", StepResult::failed("422 declined"));
    CHECK(d.events[1].data["steps"] == Json::array({"reserve"}));
  }
  SUBCASE("an attempt in flight at a restart may have happened, whatever its re-send says") {
    Sim sim = booking();
    run_until(sim, "pay");
    sim.state = fold(sim.def(), sim.log).value();
    resume(sim.def(), sim.state, sim.now);
    Decision d = sim.result("pay", StepResult::failed("409 in progress"));
    CHECK(d.events[0].data["may_have_happened"] == true);
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
    // The log says so, so another restart agrees.
    CHECK(fold(sim.def(), sim.log).value().steps[1].action.may_have_happened);
  }
}

TEST_CASE("what never left did not happen") {
  SUBCASE("a step whose every attempt was refused a connection is not compensated") {
    Sim sim = booking();
    run_until(sim, "pay");
    Decision d;
    for (int i = 0; i < 3; ++i) {
      d = sim.result("pay", StepResult::not_sent("connection refused"));
      CHECK(d.events[0].data["sent"] == false);
      if (i < 2) sim.retry_timer("pay");
    }
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
    CHECK(d.events[1].data["steps"] == Json::array({"reserve"}));  // straight on to the steps before
  }
  SUBCASE("one attempt that reached the service is enough to compensate") {
    Sim sim = booking();
    run_until(sim, "pay");
    sim.result("pay", StepResult::transient("503"));
    sim.retry_timer("pay");
    sim.result("pay", StepResult::not_sent("connection refused"));
    sim.retry_timer("pay");
    Decision d = sim.result("pay", StepResult::not_sent("connection refused"));
    CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
  }
  SUBCASE("a re-send after a restart that is refused a connection still may have happened") {
    Sim sim = booking();
    run_until(sim, "pay");
    sim.state = fold(sim.def(), sim.log).value();
    resume(sim.def(), sim.state, sim.now);
    Decision d = sim.result("pay", StepResult::not_sent("connection refused"));
    CHECK(!d.events[0].data.contains("sent"));
    CHECK(sim.state.steps[1].action.may_have_happened);
  }
}

TEST_CASE("text from services is stored as valid UTF-8 of at most 512 bytes") {
  Sim sim = booking();
  run_until(sim, "pay");
  std::string body;
  for (int i = 0; i < 400; ++i) body += "\xc3\xa9";  // "é" x 400: 800 bytes
  body += "\xe9" "chec \xff\x1b[2J";                // Latin-1, a stray byte, an escape
  Decision d = sim.result("pay", StepResult::failed("422 " + body));
  const std::string error = d.events[0].data["error"];
  CHECK(error.size() <= 512);
  CHECK(is_valid_utf8(error));
  CHECK(error.find('\x1b') == std::string::npos);
  // The event can be written: dumping it does not throw.
  CHECK_NOTHROW((void)d.events[0].data.dump());
}

TEST_CASE("a success with a note keeps it in the event") {
  Sim sim = booking();
  sim.start(kInput);
  Decision d = sim.result("reserve", StepResult::ok_without_output("the reply is not JSON: ticket issued"));
  CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "StepScheduled"});
  CHECK(d.events[0].data["output"] == Json::object());
  CHECK(d.events[0].data["note"] == "the reply is not JSON: ticket issued");
}

TEST_CASE("the fold refuses a log with a gap") {
  Sim sim = booking();
  run_until(sim, "pay");
  std::vector<Event> gap = sim.log;
  gap.erase(gap.begin() + 2);
  auto folded = fold(sim.def(), gap);
  REQUIRE(!folded.is_ok());
  CHECK(folded.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("a saga whose events the log refuses is stuck with the reason") {
  Sim sim = booking();
  run_until(sim, "pay");
  Decision d = sim.feed(Input{0, 0, LogRefusedInput{"bad data"}});
  CHECK(types(d) == std::vector<std::string>{"StepFailed", "SagaStuck"});
  CHECK(sim.state.status == SagaStatus::kStuck);
  CHECK(d.events[1].data["error"].get<std::string>().find("bad data") != std::string::npos);
}

TEST_CASE("a failure after the pivot is retried and never compensated") {
  Sim sim = booking();
  run_until(sim, "notify");
  for (int i = 0; i < 50; ++i) {  // notify retries without limit
    Decision d = sim.result("notify", StepResult::failed("500"));
    // A business failure after the pivot cannot go back: an operator must look.
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "SagaStuck"});
    sim.operator_retry();
  }
  for (int i = 0; i < 50; ++i) {
    Decision d = sim.result("notify", StepResult::transient("503"));
    CHECK(types(d) == std::vector<std::string>{"StepFailed", "RetryScheduled"});
    sim.retry_timer("notify");
  }
  CHECK(timer_of(sim.result("notify", StepResult::transient("503")), TimerKind::kRetry)->at <=
        sim.now + 300 * kSecond);  // capped at max_backoff 5m
  sim.retry_timer("notify");
  sim.ok("notify");
  CHECK(sim.state.status == SagaStatus::kCompleted);
  for (const auto& e : sim.log) CHECK(e.type != EventType::kCompensationStarted);
}

TEST_CASE("a pivot whose outcome stays unknown is stuck, not compensated") {
  Sim sim = booking();
  run_until(sim, "confirm");
  for (int attempt = 1; attempt <= 3; ++attempt) {
    sim.attempt_timeout("confirm");
    if (attempt < 3) sim.retry_timer("confirm");
  }
  CHECK(sim.state.status == SagaStatus::kStuck);
  CHECK(sim.step_status("confirm") == "unknown");
  Decision d = sim.operator_retry();
  CHECK(dispatch_of(d)->step == 2);
  sim.ok("confirm", {{"ticketId", "t-1"}});
  sim.ok("notify");
  CHECK(sim.state.status == SagaStatus::kCompleted);
}

TEST_CASE("a request that cannot be rendered fails the step without sending it") {
  Sim sim = booking();
  sim.start(kInput);
  sim.ok("reserve", Json::object());  // no holdId in the output
  Decision d = sim.ok("pay", {{"paymentId", "p-1"}});
  // confirm needs steps.reserve.output.holdId: it fails unsent, so only pay and
  // reserve are undone.
  CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "StepFailed", "CompensationStarted", "StepScheduled"});
  CHECK(d.events[1].data["error"] ==
        "request not sent: ${steps.reserve.output.holdId}: step \"reserve\" output has no \"holdId\"");
  CHECK(d.events[2].data["steps"] == Json::array({"pay", "reserve"}));
  CHECK(sim.state.steps[2].action.attempts == 0);
  // reserve's release needs the same missing value: an operator must look.
  d = sim.comp_ok("pay");
  CHECK(types(d) == std::vector<std::string>{"StepSucceeded", "StepFailed", "SagaStuck"});
  CHECK(sim.state.status == SagaStatus::kStuck);
}

TEST_CASE("idempotency keys name the saga, the step and the side") {
  CHECK(idempotency_key("s1", "pay", CallKind::kAction) == "s1:pay:action");
  CHECK(idempotency_key("s1", "pay", CallKind::kCompensate) == "s1:pay:compensate");
}

TEST_CASE("the state is the fold of its events") {
  Sim sim = booking();
  run_until(sim, "confirm");
  sim.attempt_timeout("confirm");
  sim.retry_timer("confirm");
  sim.result("confirm", StepResult::failed("gone"));
  sim.result("pay", StepResult::transient("503"), CallKind::kCompensate);
  SagaState replayed = fold(sim.def(), sim.log).value();
  CHECK(saga_to_json(sim.def(), replayed) == sim.view());
  CHECK(replayed.last_seq == static_cast<int64_t>(sim.log.size()));
  CHECK(replayed.steps[1].compensation.retry_at == sim.state.steps[1].compensation.retry_at);
}

TEST_CASE("recovery reissues the attempt in flight and re-arms pending timers") {
  Sim sim = booking();
  run_until(sim, "pay");
  SagaState recovered = fold(sim.def(), sim.log).value();
  auto cmds = resume(sim.def(), recovered, sim.now + 7 * kSecond);
  const DispatchCommand* d = nullptr;
  const TimerCommand* deadline = nullptr;
  for (const auto& c : cmds) {
    if (auto* p = std::get_if<DispatchCommand>(&c)) d = p;
    if (auto* p = std::get_if<TimerCommand>(&c); p && p->kind == TimerKind::kDeadline) deadline = p;
  }
  REQUIRE(d);
  CHECK(d->step == 1);
  CHECK(d->attempt == 1);  // same attempt, same idempotency key
  CHECK(d->body == Json{{"amount", 120}, {"reference", "saga-1"}});
  CHECK(recovered.steps[1].action.resumed);  // it may have been sent before the restart
  REQUIRE(deadline);

  sim.result("pay", StepResult::transient("503"));
  recovered = fold(sim.def(), sim.log).value();
  cmds = resume(sim.def(), recovered, sim.now);
  bool retry_armed = false;
  for (const auto& c : cmds)
    if (auto* p = std::get_if<TimerCommand>(&c); p && p->kind == TimerKind::kRetry)
      retry_armed = p->at == sim.state.steps[1].action.retry_at && p->attempt == 2;
  CHECK(retry_armed);

  sim.result("pay", StepResult::transient("x"));  // ignored: nothing in flight
  CHECK(resume_folded(sim, sim.now).size() == 2);
}

TEST_CASE("a compensation's reason names the failed step once, also when the adapter's error names it") {
  Sim sim = booking();
  run_until(sim, "pay");
  Decision d = sim.result("pay", StepResult::failed("step \"pay\" (payments.charge): card declined"));
  REQUIRE(types(d).at(1) == "CompensationStarted");
  CHECK(read_compensation_started(d.events[1].data).reason == "step \"pay\" (payments.charge): card declined");

  Sim plain = booking();
  run_until(plain, "pay");
  d = plain.result("pay", StepResult::failed("card declined"));
  CHECK(read_compensation_started(d.events[1].data).reason == "step \"pay\" failed: card declined");
}
