// POST /v1/sagas/{id}/resolve and /terminate, the notes and actors of every
// operator action, and the read-only token (docs/api.md and docs/semantics.md).
#include <doctest/doctest.h>

#include "api_fixture.h"
#include "http/api/operator_action.h"

using usher::Json;
using usher::test::ApiFixture;
namespace http = boost::beast::http;

namespace {

const std::string kGood = R"({"seat":"A1","amount":50})";
const std::map<std::string, std::string> kAdmin = {{"Authorization", "Bearer s3cret-token"}};
const std::map<std::string, std::string> kReader = {{"Authorization", "Bearer read-only-token"}};

void check_problem(const ApiFixture::Reply& r, unsigned status, const std::string& detail_has = "") {
  CHECK(r.status == status);
  CHECK(r.header(http::field::content_type) == "application/problem+json");
  REQUIRE(r.json.is_object());
  CHECK(r.json["status"] == status);
  if (!detail_has.empty()) CHECK_MESSAGE(r.json["detail"].get<std::string>().find(detail_has) != std::string::npos,
                                         r.json["detail"]);
}

// A fragile saga: stuck compensating "open" (its compensation is jammed once).
std::string stuck_saga(ApiFixture& f, const std::map<std::string, std::string>& headers = {}) {
  auto started = f.post("/v1/workflows/fragile/sagas?wait=10s", "", headers);
  REQUIRE(started.json["status"] == "stuck");
  return started.json["id"];
}

Json last_event(ApiFixture& f, const std::string& id, const std::map<std::string, std::string>& headers = {}) {
  auto events = f.get("/v1/sagas/" + id + "/events", headers);
  REQUIRE(events.status == 200);
  REQUIRE(!events.json["events"].empty());
  return events.json["events"].back();
}

Json event_of_type(ApiFixture& f, const std::string& id, const std::string& type,
                   const std::map<std::string, std::string>& headers = {}) {
  auto events = f.get("/v1/sagas/" + id + "/events", headers);
  for (const Json& e : events.json["events"])
    if (e["type"] == type) return e;
  FAIL("no " << type << " event");
  return nullptr;
}

}  // namespace

TEST_CASE("resolve states a stuck call's outcome and the saga goes on") {
  ApiFixture f;
  std::string id = stuck_saga(f);
  auto r = f.post("/v1/sagas/" + id + "/resolve",
                  R"({"step":"open","outcome":"succeeded","note":"box closed by hand"})");
  REQUIRE(r.status == 202);
  CHECK(r.json["id"] == id);
  CHECK(r.json["status"] == "compensated");
  Json resolved = event_of_type(f, id, "OperatorResolved");
  CHECK(resolved["step"] == "open");
  CHECK(resolved["data"]["kind"] == "compensate");
  CHECK(resolved["data"]["outcome"] == "succeeded");
  CHECK(resolved["data"]["note"] == "box closed by hand");
  CHECK(resolved["data"]["actor"] == "anonymous");
  // Settled now: a second resolve is a conflict.
  check_problem(f.post("/v1/sagas/" + id + "/resolve", R"({"step":"open","outcome":"succeeded","note":"again"})"),
                409, "compensated");
}

TEST_CASE("resolve refuses a bad body with 400 and a wrong state with 409") {
  ApiFixture f;
  std::string id = stuck_saga(f);
  const std::string path = "/v1/sagas/" + id + "/resolve";
  check_problem(f.post(path, R"({"outcome":"succeeded","note":"n"})"), 400, "\"step\" is required");
  check_problem(f.post(path, R"({"step":"open","outcome":"done","note":"n"})"), 400, "\"succeeded\" or \"failed\"");
  check_problem(f.post(path, R"({"step":"open","outcome":"succeeded"})"), 400, "\"note\" is required");
  check_problem(f.post(path, R"({"step":"open","outcome":"succeeded","note":"  "})"), 400, "\"note\" is required");
  check_problem(f.post(path, R"({"step":"open","outcome":"succeeded","note":"n","output":[1]})"), 400,
                "must be a JSON object");
  check_problem(f.post(path, R"({"step":"open","outcome":"failed","note":"n","output":{}})"), 400,
                "\"succeeded\" only");
  check_problem(f.post(path, R"({"step":"open","outcome":"succeeded","note":"n","comment":"x"})"), 400,
                "unknown field \"comment\"");
  check_problem(f.post(path, R"(["open"])"), 400);
  check_problem(f.post(path, R"({"step":"open",)"), 400);
  // The compensation of "open" is stuck: the step named must be it, and a
  // compensation cannot be stated failed.
  check_problem(f.post(path, R"({"step":"fail","outcome":"succeeded","note":"n"})"), 409,
                "stuck at the compensation of step \"open\"");
  check_problem(f.post(path, R"({"step":"open","outcome":"failed","note":"n"})"), 409, "stuck again");
  CHECK(f.get("/v1/sagas/" + id).json["status"] == "stuck");  // nothing changed
  check_problem(f.post("/v1/sagas/0190aaaa-0000-7000-8000-000000000000/resolve",
                       R"({"step":"open","outcome":"succeeded","note":"n"})"),
                404);
  // A running saga is cancelled, not resolved.
  std::string running = f.post("/v1/workflows/slow/sagas", "").json["id"];
  check_problem(f.post("/v1/sagas/" + running + "/resolve", R"({"step":"wait","outcome":"succeeded","note":"n"})"),
                409, "cancel stops a running saga");
}

TEST_CASE("terminate ends a stuck saga as terminated, with the reason and the actor") {
  ApiFixture f("s3cret-token");
  std::string id = stuck_saga(f, kAdmin);
  check_problem(f.post("/v1/sagas/" + id + "/terminate", "{}", kAdmin), 400, "\"reason\" is required");
  auto r = f.post("/v1/sagas/" + id + "/terminate", R"({"reason":"customer refunded by support"})", kAdmin);
  REQUIRE(r.status == 202);
  CHECK(r.json["status"] == "terminated");
  Json e = last_event(f, id, kAdmin);
  CHECK(e["type"] == "SagaTerminated");
  CHECK(e["data"]["reason"] == "customer refunded by support");
  CHECK(e["data"]["actor"] == usher::api::token_actor("s3cret-token"));
  CHECK(e["data"]["actor"].get<std::string>().size() == std::string("token:").size() + 8);
  CHECK(f.get("/v1/sagas/" + id, kAdmin).json["status"] == "terminated");
  CHECK(f.get("/v1/sagas?status=terminated", kAdmin).json["sagas"][0]["id"] == id);
  // Terminal: every action is refused now.
  check_problem(f.post("/v1/sagas/" + id + "/retry", "", kAdmin), 409, "terminated");
  check_problem(f.post("/v1/sagas/" + id + "/terminate", R"({"reason":"again"})", kAdmin), 409);
  check_problem(f.post("/v1/sagas/" + id + "/cancel", "", kAdmin), 409);
}

TEST_CASE("retry and cancel take an optional note, recorded with the actor") {
  ApiFixture f;
  SUBCASE("retry with a note") {
    std::string id = stuck_saga(f);
    auto r = f.post("/v1/sagas/" + id + "/retry", R"({"note":"box service redeployed"})");
    REQUIRE(r.status == 202);
    Json e = event_of_type(f, id, "OperatorRetried");
    CHECK(e["data"]["note"] == "box service redeployed");
    CHECK(e["data"]["actor"] == "anonymous");
  }
  SUBCASE("cancel with a note") {
    std::string id = f.post("/v1/workflows/slow/sagas", "").json["id"];
    REQUIRE(f.post("/v1/sagas/" + id + "/cancel", R"({"note":"fan asked"})").status == 202);
    Json e = event_of_type(f, id, "CancelRequested");
    CHECK(e["data"] == Json{{"actor", "anonymous"}, {"note", "fan asked"}});
  }
  SUBCASE("an empty body is no note") {
    std::string id = stuck_saga(f);
    REQUIRE(f.post("/v1/sagas/" + id + "/retry").status == 202);
    CHECK_FALSE(event_of_type(f, id, "OperatorRetried")["data"].contains("note"));
  }
  SUBCASE("a note that is not text is refused") {
    std::string id = stuck_saga(f);
    check_problem(f.post("/v1/sagas/" + id + "/retry", R"({"note":42})"), 400, "must be a string");
    check_problem(f.post("/v1/sagas/" + id + "/retry", "{\"note\":\"" + std::string(2000, 'x') + "\"}"), 400,
                  "longer than");
  }
}

TEST_CASE("the read-only token opens the GET routes and /metrics, and no action") {
  ApiFixture f("s3cret-token", "read-only-token");
  std::string id = stuck_saga(f, kAdmin);
  CHECK(f.get("/v1/sagas/" + id, kReader).status == 200);
  CHECK(f.get("/v1/sagas", kReader).status == 200);
  CHECK(f.get("/v1/sagas/" + id + "/events", kReader).status == 200);
  CHECK(f.get("/v1/workflows", kReader).status == 200);
  CHECK(f.get("/metrics", kReader).status == 200);
  check_problem(f.post("/v1/sagas/" + id + "/retry", "", kReader), 403, "read-only");
  check_problem(f.post("/v1/sagas/" + id + "/terminate", R"({"reason":"r"})", kReader), 403);
  check_problem(f.post("/v1/workflows/booking/sagas", kGood, kReader), 403);
  CHECK(f.get("/v1/sagas/" + id, kAdmin).json["status"] == "stuck");
  // Neither token, or a wrong one: 401 as before.
  check_problem(f.get("/v1/sagas"), 401);
  check_problem(f.get("/v1/sagas", {{"Authorization", "Bearer read-only-token-x"}}), 401);
  // The full token still does everything.
  CHECK(f.post("/v1/sagas/" + id + "/retry", "", kAdmin).status == 202);
}

TEST_CASE("token_actor names a token by the start of its SHA-256") {
  // sha256("s3cret-token") begins with these 8 hex digits (openssl dgst -sha256).
  const std::string a = usher::api::token_actor("s3cret-token");
  CHECK(a == "token:a81e611a");
  CHECK(a != usher::api::token_actor("s3cret-tokem"));
  CHECK(a == usher::api::token_actor("s3cret-token"));
}
