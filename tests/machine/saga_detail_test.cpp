// One saga's page (GET /v1/sagas/{id}, `usher show`): each call that has been
// sent shows the request it sends, rendered from the log, secrets redacted.
#include <doctest/doctest.h>

#include <string>

#include "machine/sim.h"
#include "view/saga_view.h"

using namespace usher;
using namespace usher::test;

namespace {

// Each transport, an http override with a templated path, and a secret the
// payment carries.
const char* kDetailYaml = R"(
saga: detail
version: 1
services:
  seats:    { http: { url: "http://127.0.0.1:7101/api/" } }
  payments: { kafka: { brokers: "127.0.0.1:9092", topic: payments.requests } }
  tickets:  { local: {} }
redact: [/card]
steps:
  - name: reserve
    call: seats.hold
    with: { seat: "${input.seat}" }
    compensate:
      call: seats.release
      http: { method: DELETE, path: "/holds/${steps.reserve.output.holdId}" }
  - name: pay
    call: payments.charge
    with: { amount: "${input.amount}", card: "${input.card}" }
    compensate:
      call: payments.refund
      with: { paymentId: "${steps.pay.output.paymentId}" }
  - name: confirm
    type: pivot
    call: tickets.issue
    with: { holdId: "${steps.reserve.output.holdId}" }
)";

const Json kInput = {{"seat", 7}, {"amount", 120}, {"card", "4242424242424242"}};

}  // namespace

TEST_CASE("a sent call shows its request; one not sent yet shows null") {
  Sim sim(must_load(kDetailYaml));
  sim.start(kInput);
  Json saga = saga_detail_json(sim.def(), sim.state);
  const Json& reserve = saga["steps"][0]["request"];
  CHECK(reserve["method"] == "POST");
  CHECK(reserve["url"] == "http://127.0.0.1:7101/api/hold");
  CHECK(reserve["idempotency_key"] == "saga-1:reserve:action");
  CHECK(reserve["body"] == Json{{"seat", 7}});
  CHECK(saga["steps"][1]["request"].is_null());
  CHECK(saga["steps"][2]["request"].is_null());
  CHECK(saga["steps"][0]["compensation"].is_null());
}

TEST_CASE("a secret a request carries reads [redacted], also while the saga holds it") {
  Sim sim(must_load(kDetailYaml));
  sim.start(kInput);
  Decision d = sim.ok("reserve", {{"holdId", "h-1"}});
  REQUIRE(dispatch_of(d));
  CHECK(dispatch_of(d)->body["card"] == "4242424242424242");  // what is sent
  Json saga = saga_detail_json(sim.def(), sim.state);
  const Json& pay = saga["steps"][1]["request"];
  CHECK(pay["topic"] == "payments.requests");
  CHECK_FALSE(pay.contains("url"));
  CHECK(pay["body"] == Json{{"amount", 120}, {"card", "[redacted]"}});
  CHECK(saga.dump().find("4242") == std::string::npos);
  // The same from the log alone, as after a restart.
  SagaState replayed = fold(sim.def(), sim.log).value();
  CHECK(saga_detail_json(sim.def(), replayed) == saga);
}

TEST_CASE("compensations show their own requests, an http override's method and path included") {
  Sim sim(must_load(kDetailYaml));
  sim.start(kInput);
  sim.ok("reserve", {{"holdId", "h/1"}});
  sim.ok("pay", {{"paymentId", "p-9"}});
  sim.result("confirm", StepResult::failed("sold out"));
  Json saga = saga_detail_json(sim.def(), sim.state);
  CHECK(saga["steps"][2]["request"]["operation"] == "issue");
  CHECK(saga["steps"][2]["request"]["body"] == Json{{"holdId", "h/1"}});
  // Compensation runs back from pay: its refund is sent, reserve's release not yet.
  const Json& refund = saga["steps"][1]["compensation"]["request"];
  CHECK(refund["topic"] == "payments.requests");
  CHECK(refund["idempotency_key"] == "saga-1:pay:compensate");
  CHECK(refund["body"] == Json{{"paymentId", "p-9"}});
  CHECK(saga["steps"][0]["compensation"].is_null());
  sim.comp_ok("pay");
  saga = saga_detail_json(sim.def(), sim.state);
  const Json& release = saga["steps"][0]["compensation"]["request"];
  CHECK(release["method"] == "DELETE");
  CHECK(release["url"] == "http://127.0.0.1:7101/api/holds/h%2F1");
  CHECK(release["body"] == Json::object());  // no `with`: {} is sent
  CHECK(release["idempotency_key"] == "saga-1:reserve:compensate");
}

TEST_CASE("the summary views leave requests out") {
  Sim sim(must_load(kDetailYaml));
  sim.start(kInput);
  CHECK_FALSE(saga_to_json(sim.def(), sim.state)["steps"][0].contains("request"));
}
