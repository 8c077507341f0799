// The classification of Kafka reply values (DESIGN.md section 3), without a
// broker.
#include <doctest/doctest.h>

#include "kafka/kafka_reply.h"

namespace usher {
namespace {

StepCall pay_call() {
  StepCall call;
  call.saga_id = "0190aaaa";
  call.step = "pay";
  call.kind = CallKind::kAction;
  call.attempt = 2;
  call.service.name = "payments";
  call.operation = "charge";
  return call;
}

const std::string kLabel = kafka_wire::step_label(pay_call());

TEST_CASE("an ok reply is success with its output") {
  StepResult r = kafka_wire::parse_reply(R"({"status":"ok","output":{"paymentId":"p-1"}})", kLabel);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.output == Json{{"paymentId", "p-1"}});
  SUBCASE("without output, or with a null one, the output is {}") {
    CHECK(kafka_wire::parse_reply(R"({"status":"ok"})", kLabel).output == Json::object());
    CHECK(kafka_wire::parse_reply(R"({"status":"ok","output":null})", kLabel).output == Json::object());
  }
}

TEST_CASE("a failed reply is a business failure carrying the service's error") {
  StepResult r = kafka_wire::parse_reply(R"({"status":"failed","error":"card declined"})", kLabel);
  CHECK(r.outcome == Outcome::kFailed);
  CHECK(r.error == "step \"pay\" (payments.charge): card declined");
}

TEST_CASE("a retry reply is transient") {
  StepResult r = kafka_wire::parse_reply(R"({"status":"retry","error":"bank busy"})", kLabel);
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.error == "step \"pay\" (payments.charge): service asked to retry: bank busy");
  CHECK(kafka_wire::parse_reply(R"({"status":"retry"})", kLabel).outcome == Outcome::kTransient);
}

TEST_CASE("a malformed reply is transient, names the step and quotes the value, never throws") {
  const char* bad[] = {"",
                       "not json",
                       "{\"status\":",
                       "[1,2]",
                       "\"ok\"",
                       "{}",
                       R"({"status":42})",
                       R"({"status":"maybe"})",
                       R"({"status":"ok","output":[1]})",
                       R"({"status":"ok","output":"x"})",
                       R"({"status":"failed","error":{"code":1}})",
                       "\xff\xfe{\"status\":\"ok\"}"};
  for (const char* value : bad) {
    CAPTURE(value);
    StepResult r = kafka_wire::parse_reply(value, kLabel);
    CHECK(r.outcome == Outcome::kTransient);
    CHECK(r.error.starts_with("step \"pay\" (payments.charge): malformed reply ("));
  }
  SUBCASE("a long value is cut and control characters are replaced") {
    std::string value = "x\n" + std::string(1000, 'y');
    StepResult r = kafka_wire::parse_reply(value, kLabel);
    CHECK(r.error.find('\n') == std::string::npos);
    CHECK(r.error.ends_with("..."));
    CHECK(r.error.size() < 250);
  }
}

TEST_CASE("the correlation id names saga, step, kind and attempt and ends with the nonce") {
  StepCall call = pay_call();
  CHECK(kafka_wire::correlation_id(call, "n-1") == "0190aaaa:pay:action:2:n-1");
  call.kind = CallKind::kCompensate;
  CHECK(kafka_wire::correlation_id(call, "n-2") == "0190aaaa:pay:compensate:2:n-2");
  CHECK(kafka_wire::step_label(call) == "step \"pay\" (payments.charge, compensation)");
}

TEST_CASE("the replies a service builds are parsed back to the same outcome") {
  CHECK(kafka_wire::parse_reply(kafka_wire::ok_reply({{"a", 1}}), kLabel).output == Json{{"a", 1}});
  CHECK(kafka_wire::parse_reply(kafka_wire::failed_reply("no"), kLabel).outcome == Outcome::kFailed);
  CHECK(kafka_wire::parse_reply(kafka_wire::retry_reply(), kLabel).outcome == Outcome::kTransient);
}

TEST_CASE("durations in timeout errors read like the workflow's") {
  CHECK(kafka_wire::format_duration(Millis{5000}) == "5s");
  CHECK(kafka_wire::format_duration(Millis{250}) == "250ms");
  CHECK(kafka_wire::format_duration(Millis{1500}) == "1.5s");
}

}  // namespace
}  // namespace usher
