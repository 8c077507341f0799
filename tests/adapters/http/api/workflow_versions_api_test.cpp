// GET /v1/workflows and /v1/workflows/{name}: the versions unfinished sagas
// are pinned to beside the loaded one, and the loaded definition's source.
#include <doctest/doctest.h>

#include "api_fixture.h"

namespace usher {
namespace {

using test::ApiFixture;

// slow (support/api_workflows.h) once more as version 2: its one step
// backs off for a minute, so a saga started on version 1 stays running.
const std::string kSlowV2Yaml = R"(
saga: slow
version: 2
description: Slow, second edition.
services:
  waiter: { local: {} }
steps:
  - name: wait
    call: waiter.wait
    retry: { attempts: 5, backoff: 60s }
)";

Json version(int64_t number, const Json& hash, bool loaded, int64_t unfinished) {
  return {{"version", number}, {"hash", hash}, {"loaded", loaded}, {"unfinished", unfinished}};
}

const Json& workflow_named(const Json& list, const std::string& name) {
  for (const Json& w : list.at("workflows"))
    if (w.at("name") == name) return w;
  FAIL("no workflow " << name << " in " << list.dump());
  throw std::logic_error("unreachable");
}

TEST_CASE("a saga pinned to the previous version shows beside the loaded one") {
  ApiFixture f;
  const Json v1_hash = f.get("/v1/workflows/slow").json.at("hash");
  REQUIRE(f.post("/v1/workflows/slow/sagas", "{}").status == 201);
  REQUIRE(f.engine->load(test::must_load(kSlowV2Yaml, "slow.yaml")).is_ok());

  auto one = f.get("/v1/workflows/slow");
  REQUIRE(one.status == 200);
  const Json v2_hash = one.json.at("hash");
  CHECK(v2_hash != v1_hash);
  CHECK(one.json["version"] == 2);
  CHECK(one.json["versions"] == Json{version(2, v2_hash, true, 0), version(1, v1_hash, false, 1)});
  CHECK(one.json["source"] == kSlowV2Yaml);

  auto all = f.get("/v1/workflows");
  REQUIRE(all.status == 200);
  const Json& slow = workflow_named(all.json, "slow");
  CHECK(slow["versions"] == one.json["versions"]);
  CHECK_FALSE(slow.contains("source"));  // the list stays small: the source is the single workflow's
  // Every workflow carries its loaded version, with no saga on it.
  const Json& booking = workflow_named(all.json, "booking");
  CHECK(booking["versions"] == Json{version(2, booking["hash"], true, 0)});
}

TEST_CASE("finished sagas pin nothing; running and stuck ones count on the loaded version") {
  ApiFixture f;
  // Completes.
  REQUIRE(f.post("/v1/workflows/booking/sagas?wait=10s", R"({"seat":"A1","amount":5})").json["status"] ==
          "completed");
  // fragile's compensation is jammed: it ends stuck, which is unfinished.
  REQUIRE(f.post("/v1/workflows/fragile/sagas?wait=10s", "{}").json["status"] == "stuck");
  REQUIRE(f.post("/v1/workflows/slow/sagas", "{}").status == 201);
  REQUIRE(f.post("/v1/workflows/slow/sagas", "{}").status == 201);

  auto booking = f.get("/v1/workflows/booking").json;
  CHECK(booking["versions"] == Json{version(2, booking["hash"], true, 0)});
  auto fragile = f.get("/v1/workflows/fragile").json;
  CHECK(fragile["versions"] == Json{version(1, fragile["hash"], true, 1)});
  auto slow = f.get("/v1/workflows/slow").json;
  CHECK(slow["versions"] == Json{version(1, slow["hash"], true, 2)});
  CHECK(slow["source"] == test::kApiSlowYaml);
}

}  // namespace
}  // namespace usher
