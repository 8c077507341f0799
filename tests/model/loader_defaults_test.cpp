// What a valid workflow loads into: defaults, merged retry policies, the
// shape of request templates and the identity (hash) of a definition.
#include <doctest/doctest.h>

#include "model/sha256.h"
#include "test_util.h"

using usher::Json;
using usher::Millis;
using usher::RetryPolicy;
using usher::test::kHeader;
using usher::test::load;

namespace {

bool same(const RetryPolicy& a, const RetryPolicy& b) {
  return a.attempts == b.attempts && a.backoff == b.backoff && a.multiplier == b.multiplier &&
         a.max_backoff == b.max_backoff;
}

}  // namespace

TEST_CASE("applies the built-in defaults when a workflow sets none") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - name: reserve\n"
                "    call: seats.hold\n"
                "    compensate: { call: seats.release }\n");
  REQUIRE(r.ok());
  const auto& def = *r.definition;
  CHECK(def.version == 1);
  CHECK_FALSE(def.timeout.has_value());
  CHECK_FALSE(def.pivot.has_value());
  const auto& step = def.steps[0];
  CHECK(step.type == usher::StepType::kCompensatable);
  CHECK(step.action.timeout == Millis{5'000});
  CHECK(same(step.action.retry, RetryPolicy{3, Millis{200}, 2.0, Millis{10'000}}));
  REQUIRE(step.compensate.has_value());
  CHECK(step.compensate->service == "seats");
  CHECK(step.compensate->operation == "release");
  CHECK(step.compensate->timeout == Millis{5'000});
  CHECK(same(step.compensate->retry, RetryPolicy{10, Millis{1'000}, 2.0, Millis{60'000}}));
  CHECK(step.action.with.kind == usher::ValueTemplate::Kind::kLiteral);
  CHECK(step.action.with.literal == Json::object());
}

TEST_CASE("merges retry policies field by field, and never uses defaults.retry for compensations") {
  auto r = load(std::string(kHeader) +
                "timeout: 15m\n"
                "defaults:\n"
                "  timeout: 2s\n"
                "  retry: { attempts: 5, backoff: 1s }\n"
                "  compensation_retry: { max_backoff: 2m }\n"
                "steps:\n"
                "  - name: reserve\n"
                "    call: seats.hold\n"
                "    timeout: 7s\n"
                "    retry: { multiplier: 1.5 }\n"
                "    compensate:\n"
                "      call: seats.release\n"
                "      retry: { attempts: unlimited }\n"
                "  - name: pay\n"
                "    call: payments.charge\n"
                "    compensate: { call: payments.refund, timeout: 30s }\n"
                "  - name: confirm\n"
                "    type: pivot\n"
                "    call: tickets.issue\n"
                "    retry: { attempts: 1 }\n"
                "  - name: notify\n"
                "    type: retriable\n"
                "    call: tickets.notify\n"
                "    retry: { attempts: unlimited, backoff: 0s, max_backoff: 5m }\n");
  REQUIRE_MESSAGE(r.ok(), r.diagnostics.front().to_string());
  const auto& def = *r.definition;
  CHECK(def.timeout == Millis{15 * 60'000});
  CHECK(def.default_timeout == Millis{2'000});
  CHECK(same(def.default_retry, RetryPolicy{5, Millis{1'000}, 2.0, Millis{10'000}}));
  CHECK(same(def.compensation_retry, RetryPolicy{10, Millis{1'000}, 2.0, Millis{120'000}}));
  CHECK(def.pivot == size_t{2});

  const auto& reserve = def.steps[0];
  CHECK(reserve.action.timeout == Millis{7'000});
  CHECK(same(reserve.action.retry, RetryPolicy{5, Millis{1'000}, 1.5, Millis{10'000}}));
  CHECK(reserve.compensate->timeout == Millis{7'000});  // the step's own timeout
  CHECK(reserve.compensate->retry.unlimited());
  CHECK(same(reserve.compensate->retry, RetryPolicy{RetryPolicy::kUnlimited, Millis{1'000}, 2.0, Millis{120'000}}));

  const auto& pay = def.steps[1];
  CHECK(pay.action.timeout == Millis{2'000});
  CHECK(pay.compensate->timeout == Millis{30'000});
  CHECK(same(pay.compensate->retry, def.compensation_retry));

  CHECK(def.steps[2].action.retry.attempts == 1);
  CHECK(def.steps[3].type == usher::StepType::kRetriable);
  CHECK(same(def.steps[3].action.retry, RetryPolicy{RetryPolicy::kUnlimited, Millis{0}, 2.0, Millis{300'000}}));
}

TEST_CASE("types plain scalars by the YAML core schema and keeps quoted scalars as strings") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - name: a\n"
                "    call: seats.hold\n"
                "    with:\n"
                "      int: 42\n"
                "      neg: -7\n"
                "      hex: 0x1F\n"
                "      float: 2.5\n"
                "      yes: true\n"
                "      nothing: ~\n"
                "      empty:\n"
                "      quoted_int: \"42\"\n"
                "      quoted_bool: 'true'\n"
                "      word: yes\n"
                "      tagged: !!str 12\n"
                "      big: 18446744073709551615\n"
                "      list: [1, \"2\", null]\n"
                "      block: |\n"
                "        line\n");
  REQUIRE_MESSAGE(r.ok(), r.diagnostics.front().to_string());
  const Json& with = r.definition->steps[0].action.with.literal;
  CHECK(with == Json::parse(R"({"int": 42, "neg": -7, "hex": 31, "float": 2.5, "yes": true, "nothing": null,
      "empty": null, "quoted_int": "42", "quoted_bool": "true", "word": "yes", "tagged": "12",
      "big": 18446744073709551615, "list": [1, "2", null], "block": "line\n"})"));
}

TEST_CASE("keeps expressions as templates and reads http overrides") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - name: reserve\n"
                "    call: seats.hold\n"
                "    with: { seat: \"${input.seat}\", note: \"for ${saga.id}\", fixed: { a: 1 } }\n"
                "    compensate:\n"
                "      call: seats.release\n"
                "      http: { method: delete, path: \"/holds/${steps.reserve.output.holdId}\" }\n");
  REQUIRE_MESSAGE(r.ok(), r.diagnostics.front().to_string());
  const auto& step = r.definition->steps[0];
  REQUIRE(step.action.with.kind == usher::ValueTemplate::Kind::kObject);
  REQUIRE(step.action.with.members.size() == 3);
  CHECK(step.action.with.members[0].first == "seat");
  CHECK(step.action.with.members[0].second.string.whole_value());
  CHECK(step.action.with.members[1].second.kind == usher::ValueTemplate::Kind::kString);
  CHECK_FALSE(step.action.with.members[1].second.string.whole_value());
  CHECK(step.action.with.members[2].second.kind == usher::ValueTemplate::Kind::kLiteral);
  CHECK_FALSE(step.action.http.has_value());
  REQUIRE(step.compensate->http.has_value());
  CHECK(step.compensate->http->method == "DELETE");
  REQUIRE(step.compensate->http->path.parts.size() == 2);
  CHECK(std::get<std::string>(step.compensate->http->path.parts[0]) == "/holds/");
}

TEST_CASE("identifies a definition by the SHA-256 of its source") {
  const std::string yaml = std::string(kHeader) + "steps: [{ name: a, call: seats.hold }]\n";
  auto r = load(yaml);
  REQUIRE(r.ok());
  CHECK(r.definition->source == yaml);
  CHECK(r.definition->file == "x.yaml");
  CHECK(r.definition->hash == usher::sha256_hex(yaml));
  CHECK(r.definition->hash.size() == 64);
  CHECK(usher::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
