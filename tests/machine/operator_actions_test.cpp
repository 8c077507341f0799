// Operator actions on a stuck saga (docs/semantics.md (operator actions)): resolve states the
// stuck call's outcome, terminate ends the saga, and every action records
// who acted and why.
#include <doctest/doctest.h>

#include "machine/sim.h"
#include "usher/event_data.h"

using namespace usher;
using namespace usher::test;

namespace {

const Json kInput = {{"concertId", "c-42"}, {"seat", 7}, {"amount", 120}};
const OperatorNote kAlice{"token:1a2b3c4d", "refunded by hand, ticket RT-7"};

Sim booking() { return Sim(must_load(kBookingYaml)); }

// The booking stuck at its pivot: confirm got no answer three times.
Sim stuck_at_pivot() {
  Sim sim = booking();
  sim.start(kInput);
  sim.ok("reserve", {{"holdId", "h-1"}});
  sim.ok("pay", {{"paymentId", "p-1"}});
  for (int attempt = 1; attempt <= 3; ++attempt) {
    sim.attempt_timeout("confirm");
    if (attempt < 3) sim.retry_timer("confirm");
  }
  REQUIRE(sim.state.status == SagaStatus::kStuck);
  return sim;
}

// The booking stuck compensating: pay was declined and the hold's release refused.
Sim stuck_compensating() {
  Sim sim = booking();
  sim.start(kInput);
  sim.ok("reserve", {{"holdId", "h-1"}});
  sim.result("pay", StepResult::failed("declined"));
  sim.result("reserve", StepResult::failed("404 no such hold"), CallKind::kCompensate);
  REQUIRE(sim.state.status == SagaStatus::kStuck);
  return sim;
}

Decision resolve(Sim& sim, const std::string& step, bool succeeded, Json output = Json::object(),
                 OperatorNote by = kAlice) {
  return sim.feed(Input{0, 0, OperatorResolveInput{step, succeeded, std::move(output), std::move(by)}});
}

Decision terminate(Sim& sim, const std::string& reason = "duplicate booking, refunded by support") {
  return sim.feed(Input{0, 0, TerminateInput{reason, "token:1a2b3c4d"}});
}

// The state decided step by step is the state folded from the log.
void check_fold(const Sim& sim) {
  CHECK(saga_to_json(sim.def(), fold(sim.def(), sim.log).value()) == sim.view());
}

}  // namespace

TEST_CASE("resolve succeeded on a stuck pivot: the saga goes forward with the stated output") {
  Sim sim = stuck_at_pivot();
  Decision d = resolve(sim, "confirm", true, {{"ticketId", "t-by-hand"}});
  CHECK(types(d) == std::vector<std::string>{"OperatorResolved", "StepScheduled"});
  const Json& data = d.events[0].data;
  CHECK(d.events[0].step == "confirm");
  CHECK(data["outcome"] == "succeeded");
  CHECK(data["kind"] == "action");
  CHECK(data["output"] == Json{{"ticketId", "t-by-hand"}});
  CHECK(data["note"] == kAlice.note);
  CHECK(data["actor"] == kAlice.actor);
  // notify is rendered with the output the operator stated.
  REQUIRE(dispatch_of(d));
  CHECK(dispatch_of(d)->step == 3);
  CHECK(dispatch_of(d)->body["ticketId"] == "t-by-hand");
  CHECK(sim.state.status == SagaStatus::kRunning);
  CHECK(sim.step_status("confirm") == "succeeded");
  check_fold(sim);
  sim.ok("notify");
  CHECK(sim.state.status == SagaStatus::kCompleted);
  check_fold(sim);
}

TEST_CASE("resolve failed on a stuck pivot compensates the steps before it, not the pivot") {
  Sim sim = stuck_at_pivot();
  Decision d = resolve(sim, "confirm", false);
  CHECK(types(d) == std::vector<std::string>{"OperatorResolved", "CompensationStarted", "StepScheduled"});
  CHECK(d.events[0].data["outcome"] == "failed");
  CHECK_FALSE(d.events[0].data.contains("output"));
  const CompensationStartedData plan = read_compensation_started(d.events[1].data);
  CHECK(plan.steps == std::vector<std::string>{"pay", "reserve"});
  CHECK(plan.reason == "step \"confirm\" resolved as failed by an operator: " + kAlice.note);
  CHECK(sim.step_status("confirm") == "failed");
  sim.comp_ok("pay");
  sim.comp_ok("reserve");
  CHECK(sim.state.status == SagaStatus::kCompensated);
  check_fold(sim);
}

TEST_CASE("resolve succeeded on a stuck compensation goes on compensating") {
  Sim sim = stuck_compensating();
  Decision d = resolve(sim, "reserve", true);
  CHECK(types(d) == std::vector<std::string>{"OperatorResolved", "SagaCompensated"});
  CHECK(d.events[0].data["kind"] == "compensate");
  CHECK(settled_with(d, SagaStatus::kCompensated));
  CHECK(sim.step_status("reserve") == "compensated");
  check_fold(sim);
}

TEST_CASE("resolve is refused where the stated outcome cannot move the saga") {
  SUBCASE("a compensation stated failed would be stuck again") {
    Sim sim = stuck_compensating();
    Decision d = resolve(sim, "reserve", false);
    REQUIRE(d.refused);
    CHECK(d.refused->code() == StatusCode::kFailedPrecondition);
    CHECK(d.refused->message().find("would leave the saga stuck again") != std::string::npos);
    CHECK(d.events.empty());
  }
  SUBCASE("a step after the pivot cannot fail: the saga cannot go back") {
    Sim sim = booking();
    sim.start(kInput);
    sim.ok("reserve", {{"holdId", "h-1"}});
    sim.ok("pay", {{"paymentId", "p-1"}});
    sim.ok("confirm", Json::object());  // no ticketId: notify cannot be rendered
    REQUIRE(sim.state.status == SagaStatus::kStuck);
    Decision d = resolve(sim, "notify", false);
    REQUIRE(d.refused);
    CHECK(d.refused->message().find("comes after the pivot") != std::string::npos);
    // Stated as sent by hand instead, the saga completes.
    d = resolve(sim, "notify", true);
    CHECK(types(d) == std::vector<std::string>{"OperatorResolved", "SagaCompleted"});
    CHECK(sim.state.status == SagaStatus::kCompleted);
  }
  SUBCASE("the step named must be the stuck one") {
    Sim sim = stuck_at_pivot();
    Decision d = resolve(sim, "pay", true);
    REQUIRE(d.refused);
    CHECK(d.refused->message() == "saga is stuck at the action of step \"confirm\", not at step \"pay\"");
  }
  SUBCASE("a running saga is not resolved") {
    Sim sim = booking();
    sim.start(kInput);
    Decision d = resolve(sim, "reserve", true);
    REQUIRE(d.refused);
    CHECK(d.refused->message() == "saga is running, only a stuck saga can be resolved (cancel stops a running saga)");
  }
}

TEST_CASE("terminate ends a stuck saga for good and sends nothing") {
  Sim sim = stuck_at_pivot();
  Decision d = terminate(sim);
  CHECK(types(d) == std::vector<std::string>{"SagaTerminated"});
  CHECK(d.events[0].data == Json{{"reason", "duplicate booking, refunded by support"}, {"actor", "token:1a2b3c4d"}});
  CHECK(dispatch_of(d) == nullptr);
  CHECK(settled_with(d, SagaStatus::kTerminated));
  CHECK(sim.state.status == SagaStatus::kTerminated);
  CHECK(is_terminal(sim.state.status));
  Json v = sim.view();
  CHECK(v["status"] == "terminated");
  check_fold(sim);
  // Nothing more: no retry, no second terminate, no cancel, no late timer.
  CHECK(sim.operator_retry().refused);
  CHECK(terminate(sim).refused);
  CHECK(sim.cancel().refused);
  CHECK(sim.retry_timer("confirm").events.empty());
  CHECK(resume_folded(sim, sim.now).empty());
}

TEST_CASE("terminate is refused unless the saga is stuck") {
  Sim sim = booking();
  sim.start(kInput);
  Decision d = terminate(sim);
  REQUIRE(d.refused);
  CHECK(d.refused->code() == StatusCode::kFailedPrecondition);
  CHECK(d.refused->message() == "saga is running, only a stuck saga can be terminated (cancel stops a running saga)");
}

TEST_CASE("retry and cancel record who acted and why") {
  SUBCASE("retry") {
    Sim sim = stuck_at_pivot();
    Decision d = sim.feed(Input{0, 0, OperatorRetryInput{kAlice}});
    REQUIRE(types(d) == std::vector<std::string>{"OperatorRetried", "StepScheduled"});
    CHECK(d.events[0].data == Json{{"kind", "action"}, {"actor", kAlice.actor}, {"note", kAlice.note}});
    CHECK(read_operator_retried(d.events[0].data).by.note == kAlice.note);
  }
  SUBCASE("cancel") {
    Sim sim = booking();
    sim.start(kInput);
    Decision d = sim.feed(Input{0, 0, CancelInput{{"anonymous", "customer asked"}}});
    REQUIRE(types(d).at(0) == "CancelRequested");
    CHECK(d.events[0].data == Json{{"actor", "anonymous"}, {"note", "customer asked"}});
  }
  SUBCASE("without a note, the event says nothing more than before") {
    Sim sim = booking();
    sim.start(kInput);
    CHECK(sim.cancel().events.at(0).data == Json::object());
  }
}
