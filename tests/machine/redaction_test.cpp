// Secrets (`redact:`): logged and shown as "[redacted]", sent for real while
// the saga runs in this process, and after a restart a call that needs one
// fails clearly instead of sending the placeholder.
#include <doctest/doctest.h>

#include <string>

#include "machine/sim.h"

using namespace usher;
using namespace usher::test;

namespace {

// The booking of sim.h whose payment carries the card; the refund does not.
std::string redacting_booking() {
  std::string yaml = kBookingYaml;
  auto at = yaml.find("with: { amount: \"${input.amount}\"");
  REQUIRE(at != std::string::npos);
  yaml.insert(at + std::string("with: { ").size(), "card: \"${input.card}\", ");
  return yaml + "redact: [/card/number, /card/cvc]\n";
}

const Json kInput = {{"concertId", "c-42"},
                     {"seat", 7},
                     {"amount", 120},
                     {"card", {{"number", "4242424242424242"}, {"cvc", "123"}, {"holder", "Ada"}}}};

const Json kRedactedCard = {{"number", "[redacted]"}, {"cvc", "[redacted]"}, {"holder", "Ada"}};

}  // namespace

TEST_CASE("secrets are logged and shown redacted but sent for real") {
  Sim sim(must_load(redacting_booking()));
  sim.start(kInput);
  CHECK(sim.log[0].data["input"]["card"] == kRedactedCard);
  CHECK(sim.view()["input"]["card"] == kRedactedCard);
  Decision d = sim.ok("reserve", {{"holdId", "h-1"}});
  REQUIRE(dispatch_of(d));
  CHECK(dispatch_of(d)->body["card"] == kInput["card"]);
  for (const Event& e : sim.log) CHECK(e.data.dump().find("4242") == std::string::npos);
  // The fold of the log is the state, except for the secrets it never held.
  SagaState replayed = fold(sim.def(), sim.log).value();
  CHECK(saga_to_json(sim.def(), replayed) == sim.view());
  CHECK(replayed.unredacted_input == nullptr);
}

TEST_CASE("a workflow without redact keeps nothing aside") {
  Sim sim(must_load(kBookingYaml));
  sim.start(kInput);
  CHECK(sim.log[0].data["input"] == kInput);
  CHECK(sim.state.unredacted_input == nullptr);
}

TEST_CASE("after a restart, a call that needs a secret fails unsent and the saga compensates") {
  Sim sim(must_load(redacting_booking()));
  sim.start(kInput);
  sim.ok("reserve", {{"holdId", "h-1"}});
  sim.result("pay", StepResult::transient("503"));
  // The process dies with pay waiting for its retry; the secret dies with it.
  sim.state = fold(sim.def(), sim.log).value();
  Decision d = sim.retry_timer("pay");
  CHECK(types(d) == std::vector<std::string>{"StepFailed", "CompensationStarted", "StepScheduled"});
  CHECK(d.events[0].data["error"] ==
        "request not sent: it reads the redacted input /card/number, which usher holds in memory only and lost in "
        "a restart");
  // pay was sent once before (503): it may have happened, so it is refunded.
  CHECK(d.events[1].data["steps"] == Json::array({"pay", "reserve"}));
  sim.comp_ok("pay");
  sim.comp_ok("reserve");
  CHECK(sim.state.status == SagaStatus::kCompensated);
}

TEST_CASE("after a restart, an attempt in flight that needs a secret is timed out at once, not sent") {
  Sim sim(must_load(redacting_booking()));
  sim.start(kInput);
  sim.ok("reserve", {{"holdId", "h-1"}});
  SagaState recovered = fold(sim.def(), sim.log).value();
  auto cmds = resume(sim.def(), recovered, sim.now + kSecond);
  const TimerCommand* timeout = nullptr;
  for (const auto& c : cmds) {
    CHECK_FALSE(std::holds_alternative<DispatchCommand>(c));
    if (auto* t = std::get_if<TimerCommand>(&c); t && t->kind == TimerKind::kAttemptTimeout) timeout = t;
  }
  REQUIRE(timeout);
  CHECK(timeout->step == 1);
  CHECK(timeout->attempt == 1);
  CHECK(timeout->at == sim.now + kSecond);

  // A call that reads no secret is sent again as usual.
  sim.ok("pay", {{"paymentId", "p-1"}});
  cmds = resume_folded(sim, sim.now);
  bool confirm_sent = false;
  for (const auto& c : cmds)
    if (auto* p = std::get_if<DispatchCommand>(&c)) confirm_sent = p->step == 2;
  CHECK(confirm_sent);
}

TEST_CASE("a secret the start payload did not carry is no reason to fail after a restart") {
  Sim sim(must_load(redacting_booking()));
  Json input = kInput;
  input["card"] = {{"holder", "Ada"}};
  sim.start(input);
  sim.ok("reserve", {{"holdId", "h-1"}});
  auto cmds = resume_folded(sim, sim.now);
  bool pay_sent = false;
  for (const auto& c : cmds)
    if (auto* p = std::get_if<DispatchCommand>(&c)) pay_sent = p->step == 1 && p->body["card"] == input["card"];
  CHECK(pay_sent);
}
