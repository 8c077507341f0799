// The workflows shipped in workflows/: they load, have the shape docs/workflow-format.md
// describes, and validate against schemas/workflow.schema.json.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "model/expression.h"
#include "model/json_schema.h"
#include "usher/yaml_json.h"
#include "support/read_file.h"
#include "test_util.h"

namespace {

const std::string kWorkflows = USHER_SOURCE_DIR "/workflows";


}  // namespace

TEST_CASE("loads every shipped workflow") {
  auto dir = usher::load_definition_dir(kWorkflows, &usher::test::fake_env_lookup);
  for (const auto& d : dir.diagnostics) FAIL_CHECK(d.to_string());
  REQUIRE(dir.definitions.size() >= 3);
  for (const auto& def : dir.definitions) {
    CAPTURE(def->file);
    CHECK(def->pivot.has_value());
    CHECK(def->input_schema.has_value());
    for (const auto& step : def->steps) {
      if (step.type == usher::StepType::kCompensatable) CHECK(step.compensate.has_value());
      for (const auto& svc : {step.action.service}) CHECK(def->services.count(svc) == 1);
    }
  }
}

TEST_CASE("loads concert-booking as written in the design") {
  auto r = usher::load_definition_file(kWorkflows + "/concert-booking.yaml", &usher::test::fake_env_lookup);
  REQUIRE(r.ok());
  const auto& def = *r.definition;
  CHECK(def.name == "concert-booking");
  CHECK(def.version == 3);
  CHECK(def.timeout == usher::Millis{15 * 60'000});
  REQUIRE(def.steps.size() == 4);
  CHECK(def.steps[0].name == "reserve");
  CHECK(def.steps[2].name == "confirm");
  CHECK(def.pivot == size_t{2});
  CHECK(def.steps[3].type == usher::StepType::kRetriable);
  CHECK(def.steps[3].action.retry.unlimited());
  CHECK(def.steps[3].action.retry.max_backoff == usher::Millis{300'000});
  CHECK(def.steps[3].action.retry.multiplier == 2.0);
  CHECK(def.services.at("seats").url == "http://127.0.0.1:7101");
  CHECK(def.services.at("payments").transport == usher::Transport::kKafka);
  CHECK(def.services.at("payments").brokers == "127.0.0.1:9092");
  CHECK(def.services.at("payments").topic == "payments.requests");
  CHECK(def.services.at("payments").reply_topic == "usher.replies");
  CHECK(def.services.at("tickets").url == "http://127.0.0.1:7103");
  CHECK(def.services.at("notifier").url == "http://127.0.0.1:7104");

  usher::Json input = {{"userId", "u1"}, {"concertId", "c1"}, {"seat", "A1"}, {"amount", 4200}};
  usher::RenderContext ctx;
  ctx.input = &input;
  ctx.saga_id = "s-1";
  auto body = usher::render(def.steps[1].action.with, ctx);
  REQUIRE(body.is_ok());
  CHECK(body.value() == usher::Json{{"userId", "u1"}, {"amount", 4200}, {"reference", "s-1"}});
}

TEST_CASE("reports the problems of every bad file in a directory, and duplicate sagas") {
  auto dir = std::filesystem::temp_directory_path() / ("usher-model-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string good = std::string(usher::test::kHeader) + "steps: [{ name: a, call: seats.hold }]\n";
  std::ofstream(dir / "a-good.yaml") << good;
  std::ofstream(dir / "b-bad.yml") << "saga: b\nservices: { s: { local: {} } }\nsteps: [{ name: a, call: s.x, timeout: 5 }]\n";
  std::ofstream(dir / "c-bad.yaml") << "saga: c\nservices: { s: { local: {} } }\nsteps: [{ name: a, cal: s.x }]\n";
  std::ofstream(dir / "d-same.yaml") << "# same saga again\n" << good;
  std::ofstream(dir / "notes.txt") << "not a workflow";
  auto loaded = usher::load_definition_dir(dir.string(), &usher::test::fake_env_lookup);
  usher::test::Lines lines{};
  for (const auto& d : loaded.diagnostics) lines.lines.push_back(d.to_string());
  const std::string p = dir.string() + "/";
  CHECK(lines == usher::test::Lines{
                     p + "b-bad.yml:3:40: step \"a\": invalid duration \"5\" for \"timeout\" (expected a number "
                         "followed by ms, s, m, h or d, e.g. \"250ms\" or \"5s\")",
                     p + "c-bad.yaml:3:20: step \"a\": unknown field \"cal\" (did you mean \"call\"?)",
                     p + "c-bad.yaml:3:9: step \"a\": missing required field \"call\" (expected "
                         "\"service.operation\", e.g. \"seats.hold\")",
                     p + "d-same.yaml:2:1: saga \"test\" version 1 is already defined in " + p +
                         "a-good.yaml (give this one a new version)",
                 });
  REQUIRE(loaded.definitions.size() == 1);
  CHECK(loaded.definitions[0]->file == p + "a-good.yaml");
  std::filesystem::remove_all(dir);
}

TEST_CASE("converts YAML to JSON for other readers") {
  auto j = usher::yaml_to_json("a: [1, '2', true]\nb: { c: ~ }\n");
  REQUIRE(j.is_ok());
  CHECK(j.value() == usher::Json::parse(R"({"a": [1, "2", true], "b": {"c": null}})"));
  CHECK(usher::yaml_to_json("a: [1").status().code() == usher::StatusCode::kInvalidArgument);
  CHECK(usher::yaml_to_json("a: 1\na: 2\n").status().message() == "2:1: duplicate field \"a\" (first given at line 1)");
}

TEST_CASE("every shipped workflow validates against schemas/workflow.schema.json") {
  auto schema_json = usher::Json::parse(usher::test::read_file(USHER_SOURCE_DIR "/schemas/workflow.schema.json"));
  auto schema = usher::JsonSchema::compile(schema_json);
  REQUIRE_MESSAGE(schema.is_ok(), schema.status().to_string());
  size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kWorkflows)) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path().string());
    auto doc = usher::yaml_to_json(usher::test::read_file(entry.path().string()));
    REQUIRE_MESSAGE(doc.is_ok(), doc.status().to_string());
    auto violations = schema->validate(doc.value());
    for (const auto& v : violations) FAIL_CHECK(v.to_string());
    ++checked;
  }
  CHECK(checked >= 3);

  SUBCASE("and the schema catches a misspelled step field") {
    auto bad = usher::yaml_to_json("saga: x\nservices: { s: { local: {} } }\nsteps: [{ name: a, call: s.b, retyr: {} }]\n");
    REQUIRE(bad.is_ok());
    CHECK_FALSE(schema->validate(bad.value()).empty());
  }
}
