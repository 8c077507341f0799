// `redact:` in a workflow: JSON pointers into the start payload, checked
// against the input schema, and which calls read them.
#include <doctest/doctest.h>

#include "model/redaction.h"
#include "test_util.h"

using usher::test::errors;
using usher::test::kHeader;
using usher::test::load;
using usher::test::Lines;

namespace {

const std::string kSteps =
    "steps:\n"
    "  - name: reserve\n"
    "    call: seats.hold\n"
    "    with: { seat: \"${input.seat}\" }\n"
    "    compensate: { call: seats.release, with: { seat: \"${input.seat}\" } }\n"
    "  - name: pay\n"
    "    call: payments.charge\n"
    "    with: { card: \"${input.card}\", last4: \"xx${input.card.number:-}\" }\n"
    "    compensate: { call: payments.refund, with: { ref: \"${saga.id}\" } }\n";

const std::string kInputSchema =
    "input:\n"
    "  type: object\n"
    "  properties:\n"
    "    seat: { type: string }\n"
    "    card:\n"
    "      type: object\n"
    "      properties: { number: { type: string }, cvc: { type: string } }\n"
    "    cards: { type: array, items: { type: object, properties: { number: { type: string } } } }\n";

}  // namespace

TEST_CASE("redact lists JSON pointers and notes which calls read them") {
  auto r = load(std::string(kHeader) + kSteps + kInputSchema + "redact: [/card/number, /cards/0/number]\n");
  REQUIRE_MESSAGE(r.ok(), errors(r));
  const usher::Definition& def = *r.definition;
  REQUIRE(def.redact.size() == 2);
  CHECK(def.redact[0].pointer == "/card/number");
  CHECK(def.redact[0].tokens == std::vector<std::string>{"card", "number"});
  // pay reads /card/number through ${input.card} (above it) and
  // ${input.card.number} (the value itself); nothing else reads a secret.
  CHECK(def.steps[1].action.reads_redacted == std::vector<size_t>{0});
  CHECK(def.steps[0].action.reads_redacted.empty());
  CHECK(def.steps[0].compensate->reads_redacted.empty());
  CHECK(def.steps[1].compensate->reads_redacted.empty());
}

TEST_CASE("redact_input replaces what is present and leaves the rest") {
  auto r = load(std::string(kHeader) + kSteps + "redact: [/card/number, /cards/1/number, /missing/x, \"/a~1b~0c\"]\n");
  REQUIRE_MESSAGE(r.ok(), errors(r));
  CHECK(r.definition->redact[3].tokens == std::vector<std::string>{"a/b~c"});
  usher::Json input = {{"seat", "A1"},
                       {"card", {{"number", "4242424242424242"}, {"cvc", "123"}}},
                       {"cards", {{{"number", "1"}}, {{"number", "2"}}}},
                       {"a/b~c", "k"}};
  usher::Json out = usher::redact_input(*r.definition, input);
  CHECK(out["card"]["number"] == "[redacted]");
  CHECK(out["card"]["cvc"] == "123");
  CHECK(out["cards"][0]["number"] == "1");
  CHECK(out["cards"][1]["number"] == "[redacted]");
  CHECK(out["seat"] == "A1");
  CHECK(out["a/b~c"] == "[redacted]");
  CHECK_FALSE(out.contains("missing"));
  CHECK(input["card"]["number"] == "4242424242424242");  // the original is untouched
  CHECK(usher::had_value(out, r.definition->redact[0]));
  CHECK_FALSE(usher::had_value(out, r.definition->redact[2]));
}

TEST_CASE("refuses redact pointers that are malformed, repeated or unknown to the schema") {
  auto r = load(std::string(kHeader) + kSteps + kInputSchema +   // redact on line 23
                "redact:\n"
                "  - card/number\n"
                "  - /card/numbr\n"
                "  - /cards/0/nmber\n"
                "  - /a~2\n"
                "  - /card/cvc\n"
                "  - /card/cvc\n"
                "  - { x: 1 }\n");
  CHECK(errors(r) ==
        Lines{"x.yaml:24:5: redact: \"card/number\" is not a JSON pointer into the input (expected e.g. /card/number; "
              "'~' is written ~0 and '/' inside a key ~1)",
              "x.yaml:25:5: redact: \"/card/numbr\": the input schema has no property \"numbr\" under /card "
              "(did you mean \"number\"?)",
              "x.yaml:26:5: redact: \"/cards/0/nmber\": the input schema has no property \"nmber\" under /cards/0 "
              "(did you mean \"number\"?)",
              "x.yaml:27:5: redact: \"/a~2\" is not a JSON pointer into the input (expected e.g. /card/number; "
              "'~' is written ~0 and '/' inside a key ~1)",
              "x.yaml:29:5: redact: \"/card/cvc\" is listed twice",
              "x.yaml:30:5: redact: expected a JSON pointer into the input, e.g. /card/number"});

  SUBCASE("not a list") {
    auto n = load(std::string(kHeader) + kSteps + "redact: /card\n");
    CHECK(errors(n) == Lines{"x.yaml:15:9: redact: expected a list of JSON pointers into the input, e.g. [/card/number]"});
  }
  SUBCASE("the whole input") {
    auto n = load(std::string(kHeader) + kSteps + "redact: [\"\"]\n");
    CHECK_FALSE(n.ok());
  }
}
