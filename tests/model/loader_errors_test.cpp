// The loader's diagnostics: every problem, at its line and column, saying what
// was expected (docs/workflow-format.md).
#include <doctest/doctest.h>

#include "test_util.h"

using usher::test::errors;
using usher::test::kHeader;
using usher::test::load;
using usher::test::Lines;

TEST_CASE("suggests the right field for a misspelled key") {
  auto r = load(std::string(kHeader) +
                "steps:\n"                             // 6
                "  - name: pay\n"                      // 7
                "    call: seats.hold\n"               // 8
                "    compensation:\n"                  // 9
                "      call: seats.release\n");
  CHECK_FALSE(r.ok());
  CHECK(errors(r) == Lines{"x.yaml:9:5: step \"pay\": unknown field \"compensation\" (did you mean \"compensate\"?)"});

  SUBCASE("in a nested block") {
    auto n = load(std::string(kHeader) +
                  "steps:\n"
                  "  - name: pay\n"
                  "    call: seats.hold\n"
                  "    retry: { atempts: 2 }\n");
    CHECK(errors(n) == Lines{"x.yaml:9:14: step \"pay\": unknown field \"atempts\" in \"retry\" (did you mean \"attempts\"?)"});
  }
  SUBCASE("at the top level") {
    auto n = load("saga: test\nservices: { seats: { local: {} } }\nstpes: []\n");
    CHECK(errors(n) == Lines{"x.yaml:3:1: unknown field \"stpes\" (did you mean \"steps\"?)",
                             "x.yaml:1:1: missing required field \"steps\""});
  }
}

TEST_CASE("refuses a compensatable step after the pivot") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - { name: reserve, call: seats.hold }\n"
                "  - { name: confirm, type: pivot, call: tickets.issue }\n"
                "  - { name: refund, call: payments.refund }\n");
  CHECK(errors(r) == Lines{"x.yaml:9:5: step \"refund\": comes after the pivot \"confirm\", so it must be \"type: "
                           "retriable\" (steps after the pivot are never compensated)"});
}

TEST_CASE("refuses a second pivot, a retriable step before the pivot and compensate on a pivot") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - { name: a, type: retriable, call: seats.hold }\n"  // 7
                "  - { name: b, type: pivot, call: tickets.issue }\n"    // 8
                "  - { name: c, type: pivot, call: tickets.issue }\n"    // 9
                "  - name: d\n"                                          // 10
                "    type: retriable\n"
                "    call: seats.hold\n"
                "    compensate: { call: seats.release }\n");           // 13
  CHECK(errors(r) == Lines{
                         "x.yaml:13:5: step \"d\": a retriable step cannot have \"compensate\" (it is retried until "
                         "it succeeds and never undone)",
                         "x.yaml:8:22: step \"b\": the pivot must come before every retriable step, but \"a\" is "
                         "retriable and runs before it",
                         "x.yaml:9:22: step \"c\": a saga has at most one pivot, and \"b\" is already its pivot",
                     });
}

TEST_CASE("refuses a reference to an unknown step, with a suggestion") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - { name: reserve, call: seats.hold }\n"
                "  - name: pay\n"
                "    call: payments.charge\n"
                "    with: { holdId: \"${steps.reserv.output.holdId}\" }\n");
  CHECK(errors(r) ==
        Lines{"x.yaml:10:21: step \"pay\": unknown step \"reserv\" in \"${steps.reserv.output.holdId}\" (did you "
              "mean \"reserve\"?)"});
}

TEST_CASE("refuses a reference to a step that runs later") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - name: pay\n"
                "    call: payments.charge\n"
                "    with:\n"
                "      ticket: \"${steps.confirm.output.ticketId}\"\n"  // 10
                "  - { name: confirm, call: tickets.issue }\n");
  CHECK(errors(r) == Lines{"x.yaml:10:15: step \"pay\": \"${steps.confirm.output.ticketId}\" refers to step "
                           "\"confirm\", which runs after \"pay\""});

  SUBCASE("its own output only inside its compensate block") {
    auto own = load(std::string(kHeader) +
                    "steps:\n"
                    "  - name: pay\n"
                    "    call: payments.charge\n"
                    "    with: { id: \"${steps.pay.output.id}\" }\n"
                    "    compensate:\n"
                    "      call: payments.refund\n"
                    "      http: { path: \"/x\" }\n"
                    "      with: { id: \"${steps.pay.output.id}\" }\n");
    CHECK(errors(own) == Lines{
                             "x.yaml:9:17: step \"pay\": \"${steps.pay.output.id}\" refers to step \"pay\" itself; "
                             "a step's own output can only be used in its compensate block",
                             "x.yaml:12:7: step \"pay\": \"http\" applies only to http services; service "
                             "\"payments\" uses kafka",
                         });
  }
}

TEST_CASE("refuses a bad duration") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - name: pay\n"
                "    call: payments.charge\n"
                "    timeout: 5 secs\n");
  CHECK(errors(r) == Lines{"x.yaml:9:14: step \"pay\": invalid duration \"5 secs\" for \"timeout\" (expected a "
                           "number followed by ms, s, m, h or d, e.g. \"250ms\" or \"5s\")"});
  SUBCASE("a number without a unit, in the defaults") {
    auto d = load(std::string(kHeader) + "defaults: { retry: { backoff: 200 } }\nsteps: [{ name: a, call: seats.hold }]\n");
    CHECK(errors(d) == Lines{"x.yaml:6:31: defaults: invalid duration \"200\" for \"retry.backoff\" (expected a "
                             "number followed by ms, s, m, h or d, e.g. \"250ms\" or \"5s\")"});
  }
}

TEST_CASE("refuses bad expressions at the scalar's position") {
  auto r = load(std::string(kHeader) +
                "steps:\n"
                "  - name: reserve\n"
                "    call: seats.hold\n"
                "    with:\n"
                "      a: \"${input.}\"\n"             // 10
                "      b: \"${steps.reserve}\"\n"      // 11
                "      c: \"x ${inputs.seat} y\"\n"    // 12
                "      d: \"${input.seat\"\n"          // 13
                "      e: \"${saga.name}\"\n");        // 14
  CHECK(errors(r) == Lines{
                         "x.yaml:10:10: step \"reserve\": invalid expression in \"with.a\": empty path segment in "
                         "\"${input.}\"",
                         "x.yaml:11:10: step \"reserve\": invalid expression in \"with.b\": \"${steps.reserve}\" "
                         "must refer to the step's output, e.g. \"${steps.reserve.output}\"",
                         "x.yaml:12:10: step \"reserve\": invalid expression in \"with.c\": unknown root \"inputs\" "
                         "in \"${inputs.seat}\" (expected input, steps, saga or env)",
                         "x.yaml:13:10: step \"reserve\": invalid expression in \"with.d\": unterminated "
                         "expression: \"${\" at offset 0 has no closing '}'",
                         "x.yaml:14:10: step \"reserve\": invalid expression in \"with.e\": unknown saga field in "
                         "\"${saga.name}\" (expected ${saga.id} or ${saga.workflow})",
                     });
}

TEST_CASE("reports a YAML syntax error with its position") {
  auto r = load("saga: test\nsteps: [a, b\n");
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].pos.line >= 2);
  CHECK(r.diagnostics[0].message.rfind("invalid YAML: ", 0) == 0);
  auto tab = load("saga: test\nservices:\n\tseats: 1\n");
  REQUIRE(tab.diagnostics.size() == 1);
  CHECK(tab.diagnostics[0].message.rfind("invalid YAML: ", 0) == 0);
}

TEST_CASE("refuses a second YAML document, and ends on input that yields endless documents") {
  auto two = load("saga: a\n---\nsaga: b\n");
  bool found = false;
  for (const auto& d : two.diagnostics)
    if (d.message == "a workflow file holds one YAML document, found more") {
      found = true;
      CHECK(d.pos.line == 2);
    }
  CHECK(found);
  // yaml-cpp's LoadAll loops forever on this text (found by fuzzing).
  auto endless = load(", b\nc: 2\n");
  CHECK_FALSE(endless.ok());
  CHECK_FALSE(endless.diagnostics.empty());
}

TEST_CASE("substitutes environment variables in services, with and without defaults") {
  const std::string yaml =
      "saga: test\n"
      "services:\n"
      "  seats: { http: { url: \"${env.SEATS_URL:-http://127.0.0.1:7101}\" } }\n"
      "  payments: { kafka: { brokers: \"${env.KAFKA_BROKERS}\", topic: \"pay.${env.STAGE:-dev}\" } }\n"
      "steps:\n"
      "  - name: a\n"
      "    call: seats.hold\n"
      "    with: { region: \"${env.REGION:-eu}-1\", path: \"${env.HOME_DIR}\" }\n";
  SUBCASE("set variables win over defaults") {
    usher::test::EnvGuard env({{"SEATS_URL", "http://seats:80"}, {"KAFKA_BROKERS", "k1:9092,k2:9092"},
                               {"STAGE", "prod"}, {"HOME_DIR", "/srv"}});
    auto r = load(yaml);
    REQUIRE_MESSAGE(r.ok(), r.diagnostics.front().to_string());
    const auto& def = *r.definition;
    CHECK(def.services.at("seats").url == "http://seats:80");
    CHECK(def.services.at("payments").brokers == "k1:9092,k2:9092");
    CHECK(def.services.at("payments").topic == "pay.prod");
    CHECK(def.services.at("payments").reply_topic == "usher.replies");
    CHECK(def.steps[0].action.with.kind == usher::ValueTemplate::Kind::kLiteral);
    CHECK(def.steps[0].action.with.literal == usher::Json{{"region", "eu-1"}, {"path", "/srv"}});
  }
  SUBCASE("unset variables take their defaults; without one it is an error") {
    usher::test::EnvGuard env(std::map<std::string, std::string>{{"KAFKA_BROKERS", ""}});
    auto r = load(yaml);
    CHECK(errors(r) == Lines{
                           "x.yaml:4:33: service \"payments\": environment variable KAFKA_BROKERS is empty and "
                           "\"${env.KAFKA_BROKERS}\" has no default (write \"${env.KAFKA_BROKERS:-value}\" to give one)",
                           "x.yaml:8:50: step \"a\": environment variable HOME_DIR is not set and "
                           "\"${env.HOME_DIR}\" has no default (write \"${env.HOME_DIR:-value}\" to give one)",
                       });
  }
  SUBCASE("defaults apply") {
    usher::test::EnvGuard env({{"KAFKA_BROKERS", "k:1"}, {"HOME_DIR", "/h"}});
    auto r = load(yaml);
    REQUIRE(r.ok());
    CHECK(r.definition->services.at("seats").url == "http://127.0.0.1:7101");
    CHECK(r.definition->services.at("payments").topic == "pay.dev");
  }
}

TEST_CASE("collects every problem in a file, not just the first") {
  auto r = load("saga: Bad Name\n"
                "version: 0\n"
                "services:\n"
                "  seats: { http: {} }\n"
                "  both: { http: { url: \"http://x\" }, local: {} }\n"
                "steps:\n"
                "  - { name: a, call: seats }\n"
                "  - { name: a, call: sets.hold, type: pivto }\n");
  CHECK(errors(r) == Lines{
                         "x.yaml:1:7: invalid saga name \"Bad Name\" (expected lowercase letters, digits and '-', "
                         "starting with a letter or digit, e.g. \"concert-booking\")",
                         "x.yaml:2:10: \"version\" must be an integer >= 1, got \"0\"",
                         "x.yaml:4:18: service \"seats\": missing required field \"url\" in \"http\" (e.g. url: "
                         "\"http://127.0.0.1:7101\")",
                         "x.yaml:5:9: service \"both\": expected exactly one of http, kafka or local, got http and "
                         "local",
                         "x.yaml:7:22: step \"a\": call \"seats\" must be \"service.operation\", e.g. \"seats.hold\"",
                         "x.yaml:8:13: step 2: duplicate step name \"a\" (step 1 has it already)",
                         "x.yaml:8:39: step 2: unknown step type \"pivto\" (expected compensatable, pivot or "
                         "retriable) (did you mean \"pivot\"?)",
                         "x.yaml:8:22: step 2: unknown service \"sets\" in call \"sets.hold\" (did you mean "
                         "\"seats\"?)",
                     });
}

TEST_CASE("refuses an input block that is not a valid JSON Schema") {
  auto r = load(std::string(kHeader) +
                "input:\n"
                "  type: objekt\n"
                "steps: [{ name: a, call: seats.hold }]\n");
  REQUIRE(r.diagnostics.size() == 1);
  CHECK(r.diagnostics[0].pos.line == 7);
  CHECK(r.diagnostics[0].message.rfind("input: not a valid JSON Schema: ", 0) == 0);
}

TEST_CASE("never throws or crashes on hostile input") {
  const std::vector<std::string> inputs = {
      "",
      "---\n",
      "[1, 2]",
      "just text",
      "saga: [1]\nservices: 3\nsteps: {a: 1}\n",
      "saga: x\nsaga: y\nservices: {}\nsteps: [1, [2], ~]\n",
      "saga: x\nservices: { s: { http: { url: \"${env.X\" } } }\nsteps: [{ name: a, call: s.b, with: [1, {}] }]\n",
      "saga: x\nversion: 99999999999999999999999\ntimeout: 9999999999999d\nservices: { s: { local: } }\n"
      "steps: [{ name: a, call: s.b, retry: { attempts: 1e400, multiplier: .nan, backoff: -1s } }]\n",
      "a: &a [*a, *a]\n",
      "x: &a [1]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
      "w: &d [*c, *c, *c, *c, *c, *c, *c, *c]\nv: &e [*d, *d, *d, *d, *d, *d, *d, *d]\n"
      "input: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
      "saga: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
      "? [a]\n: 1\n",
      "saga: x\n--- \nsaga: y\n",
      std::string(5000, '[') + std::string(5000, ']'),
      "saga: x\nservices: {s: {local: {}}}\nsteps: [{name: a, call: s.b, with: " + std::string(100, '[') + "1" +
          std::string(100, ']') + "}]\n",
      "saga: x\nservices: {s: {local: {}}}\nsteps: [{name: a, call: s.b, with: {x: !custom 1, y: !!int abc}}]\n",
      "saga: x\nservices: {s: {local: {}}}\nsteps: [{name: a, call: s.b, with: \"${input.x:-${input.y}}\"}]\n",
      "\xff\xfe\x00garbage",
  };
  for (const auto& text : inputs) {
    CAPTURE(text.substr(0, 80));
    usher::LoadResult r;
    CHECK_NOTHROW(r = load(text));
    CHECK_FALSE(r.ok());
    CHECK_FALSE(r.diagnostics.empty());
  }
}
