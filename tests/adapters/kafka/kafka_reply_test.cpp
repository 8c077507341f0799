// The classification of Kafka reply values (docs/semantics.md), without a
// broker.
#include <doctest/doctest.h>

#include "kafka/kafka_reply.h"
#include "usher/duration.h"
#include "usher/service_text.h"

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

// The contract on every text taken from a reply: valid UTF-8, at most 512
// bytes, one line.
void check_storable(const std::string& text) {
  CAPTURE(text);
  CHECK(is_valid_utf8(text));
  CHECK(text.size() <= kMaxServiceTextBytes);
  for (char c : text) CHECK(static_cast<unsigned char>(c) >= 0x20);
}

TEST_CASE("a malformed reply leaves the outcome unknown, names the step and quotes the value, never throws") {
  const std::string bad[] = {"",
                             "not json",
                             "{\"status\":",
                             "[1,2]",
                             "\"ok\"",
                             "{}",
                             R"({"status":42})",
                             R"({"status":"maybe"})",
                             "\xff\xfe{\"status\":\"ok\"}",
                             std::string(400'000, '['),
                             std::string(65, '{'),
                             // The parser stops at a NUL: what comes before it is not the reply.
                             std::string("{\"status\":\"ok\"}\0junk", 20)};
  for (const std::string& value : bad) {
    CAPTURE(value.substr(0, 80));
    StepResult r = kafka_wire::parse_reply(value, kLabel);
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error.starts_with("step \"pay\" (payments.charge): malformed reply ("));
    check_storable(r.error);
  }
  SUBCASE("a long value is cut on a character boundary and control characters are replaced") {
    std::string value = "x\n" + std::string(1000, 'y');
    StepResult r = kafka_wire::parse_reply(value, kLabel);
    CHECK(r.error.find('\n') == std::string::npos);
    CHECK(r.error.ends_with("\xE2\x80\xA6"));  // …
    CHECK(r.error.size() < 250);
  }
  SUBCASE("nesting deeper than 64 levels is refused before parsing") {
    StepResult r = kafka_wire::parse_reply(std::string(400'000, '['), kLabel);
    CHECK(r.error.starts_with("step \"pay\" (payments.charge): malformed reply (nested deeper than 64 levels): [[["));
    std::string deep_ok = R"({"status":"ok","output":)" + std::string(63, '[') + std::string(63, ']') + "}";
    CHECK_FALSE(kafka_wire::json_deeper_than(deep_ok));  // 64 levels: parsed
    CHECK(kafka_wire::parse_reply(deep_ok, kLabel).outcome == Outcome::kOk);
  }
}

TEST_CASE("a reply that is not UTF-8 JSON is unknown, and its error is valid UTF-8") {
  SUBCASE("UTF-16") {
    std::string utf16;
    for (char c : std::string(R"({"status":"failed","error":"x"})")) {
      utf16 += c;
      utf16 += '\0';
    }
    StepResult r = kafka_wire::parse_reply(utf16, kLabel);
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.error.starts_with("step \"pay\" (payments.charge): malformed reply (not JSON): { \" s t a t u s"));
    check_storable(r.error);
  }
  SUBCASE("Latin-1 inside a string") {
    StepResult r = kafka_wire::parse_reply("{\"status\":\"failed\",\"error\":\"\xE9" "chec\"}", kLabel);
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.error == "step \"pay\" (payments.charge): malformed reply (not JSON): "
                     "{\"status\":\"failed\",\"error\":\"\xEF\xBF\xBD" "chec\"}");
  }
  SUBCASE("binary") {
    const char bytes[] = "\x00\x01\x1B[2J\xC0\xAF\x00";
    StepResult r = kafka_wire::parse_reply(std::string(bytes, sizeof bytes - 1), kLabel);
    CHECK(r.outcome == Outcome::kTimeout);
    check_storable(r.error);
  }
}

TEST_CASE("the error a service sends is stored as valid UTF-8 of at most 512 bytes") {
  std::string long_error;
  for (int i = 0; i < 700; ++i) long_error += "\xE2\x82\xAC";  // €, 2.1 KB
  StepResult r = kafka_wire::parse_reply(kafka_wire::failed_reply(long_error), kLabel);
  CHECK(r.outcome == Outcome::kFailed);
  check_storable(r.error);
  CHECK(r.error.starts_with("step \"pay\" (payments.charge): \xE2\x82\xAC"));
  CHECK(r.error.ends_with("\xE2\x80\xA6"));

  r = kafka_wire::parse_reply(R"({"status":"failed","error":"\u001b[31mred\u0000\ttab"})", kLabel);
  CHECK(r.error == "step \"pay\" (payments.charge):  [31mred \ttab");
  r = kafka_wire::parse_reply(kafka_wire::retry_reply(long_error), kLabel);
  CHECK(r.outcome == Outcome::kTransient);
  check_storable(r.error);
}

TEST_CASE("a known status with a field of the wrong type keeps its outcome") {
  StepResult r = kafka_wire::parse_reply(R"({"status":"ok","output":[1]})", kLabel);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.output == Json::object());
  CHECK(r.note == "the reply's \"output\" is not an object: [1]");
  r = kafka_wire::parse_reply(R"({"status":"ok","output":"x"})", kLabel);
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.note == "the reply's \"output\" is not an object: \"x\"");
  r = kafka_wire::parse_reply(R"({"status":"failed","error":{"code":1}})", kLabel);
  CHECK(r.outcome == Outcome::kFailed);
  CHECK(r.error == R"(step "pay" (payments.charge): {"code":1})");
}

TEST_CASE("excerpts are bounded, valid UTF-8 and cut on a character boundary") {
  CHECK(kafka_wire::excerpt("a\tb\nc") == "a b c");
  CHECK(kafka_wire::excerpt(std::string(50, 'x'), 10) == std::string(7, 'x') + "\xE2\x80\xA6");
  std::string e_acute;
  for (int i = 0; i < 10; ++i) e_acute += "\xC3\xA9";
  CHECK(kafka_wire::excerpt(e_acute, 8) == "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
  CHECK(kafka_wire::excerpt("\xE9t\xE9") == "\xEF\xBF\xBDt\xEF\xBF\xBD");
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
  CHECK(format_duration(Millis{5000}) == "5s");
  CHECK(format_duration(Millis{250}) == "250ms");
  CHECK(format_duration(Millis{1500}) == "1.5s");
}

}  // namespace
}  // namespace usher
