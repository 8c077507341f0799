#include <doctest/doctest.h>

#include <thread>

#include "api_fixture.h"
#include "usher/inspect.h"

using usher::Json;
using usher::test::ApiFixture;
namespace http = boost::beast::http;

namespace {

const std::string kGood = R"({"seat":"A1","amount":50})";
const std::string kDeclined = R"({"seat":"A2","amount":5000})";

void check_problem(const ApiFixture::Reply& r, unsigned status) {
  CHECK(r.status == status);
  CHECK(r.header(http::field::content_type) == "application/problem+json");
  REQUIRE(r.json.is_object());
  CHECK(r.json["status"] == status);
  CHECK(r.json["type"].get<std::string>().rfind("urn:usher:problem:", 0) == 0);
  CHECK(!r.json["title"].get<std::string>().empty());
  CHECK(!r.json["detail"].get<std::string>().empty());
}

}  // namespace

TEST_CASE("healthz answers ok") {
  ApiFixture f;
  auto r = f.get("/healthz");
  CHECK(r.status == 200);
  CHECK(r.json == Json{{"status", "ok"}});
}

TEST_CASE("start answers 201 with the saga and Location, then 200 with the same saga for the same key") {
  ApiFixture f;
  auto first = f.post("/v1/workflows/booking/sagas", kGood, {{"Idempotency-Key", "order-1"}});
  REQUIRE(first.status == 201);
  std::string id = first.json["id"];
  CHECK(first.header(http::field::location) == "/v1/sagas/" + id);
  CHECK(first.json["workflow"] == "booking");
  CHECK(first.json["steps"].size() == 4);
  CHECK(first.json["idempotency_key"] == "order-1");

  auto again = f.post("/v1/workflows/booking/sagas", kGood, {{"Idempotency-Key", "order-1"}});
  CHECK(again.status == 200);
  CHECK(again.json["id"] == id);
  CHECK(again.header(http::field::location) == "/v1/sagas/" + id);

  SUBCASE("the same key for another workflow is a conflict") {
    auto other = f.post("/v1/workflows/slow/sagas", "{}", {{"Idempotency-Key", "order-1"}});
    check_problem(other, 409);
  }
  SUBCASE("without a key every start is new") {
    auto a = f.post("/v1/workflows/booking/sagas", kGood);
    auto b = f.post("/v1/workflows/booking/sagas", kGood);
    CHECK(a.status == 201);
    CHECK(b.status == 201);
    CHECK(a.json["id"] != b.json["id"]);
  }
}

TEST_CASE("start passes correlation id and traceparent to the saga") {
  ApiFixture f;
  auto r = f.post("/v1/workflows/booking/sagas?wait=5s", kGood,
                  {{"X-Correlation-Id", "corr-7"},
                   {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  REQUIRE(r.status == 201);
  CHECK(r.json["correlation_id"] == "corr-7");
  auto events = f.get("/v1/sagas/" + r.json["id"].get<std::string>() + "/events");
  REQUIRE(events.status == 200);
  CHECK(events.json["events"][0]["data"]["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
}

TEST_CASE("a traceparent that is not W3C trace context is dropped, never forwarded to the steps") {
  ApiFixture f;
  for (const char* bad : {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  // v00 has 4 fields
                          "00-00000000000000000000000000000000-b7ad6b7169203331-01",        // zero trace id
                          "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",        // uppercase
                          "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",        // version ff
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0\x01",    // a control byte
                          "hello"}) {
    CAPTURE(bad);
    auto r = f.post("/v1/workflows/booking/sagas", kGood, {{"traceparent", bad}});
    REQUIRE(r.status == 201);
    auto events = f.get("/v1/sagas/" + r.json["id"].get<std::string>() + "/events");
    REQUIRE(events.status == 200);
    CHECK_FALSE(events.json["events"][0]["data"].contains("traceparent"));
  }
}

TEST_CASE("?wait returns the saga once it is terminal") {
  ApiFixture f;
  SUBCASE("completed") {
    auto r = f.post("/v1/workflows/booking/sagas?wait=10s", kGood);
    REQUIRE(r.status == 201);
    CHECK(r.json["status"] == "completed");
    CHECK(r.json["steps"][3]["status"] == "succeeded");
    CHECK(r.json["steps"][2]["output"]["ticketId"] == "T-1");
  }
  SUBCASE("declined and compensated") {
    auto r = f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined);
    REQUIRE(r.status == 201);
    CHECK(r.json["status"] == "compensated");
    CHECK(r.json["steps"][0]["status"] == "compensated");
    CHECK(r.json["steps"][1]["status"] == "failed");
  }
  SUBCASE("a wait that ends first returns the saga as it is") {
    auto before = std::chrono::steady_clock::now();
    auto r = f.post("/v1/workflows/slow/sagas?wait=300ms", "");
    auto took = std::chrono::steady_clock::now() - before;
    REQUIRE(r.status == 201);
    CHECK(r.json["status"] == "running");
    CHECK(took >= std::chrono::milliseconds(250));
    CHECK(took < std::chrono::seconds(5));
  }
  SUBCASE("a repeated start with ?wait answers 200 with the settled saga") {
    auto a = f.post("/v1/workflows/booking/sagas?wait=10s", kGood, {{"Idempotency-Key", "w"}});
    auto b = f.post("/v1/workflows/booking/sagas?wait=10s", kGood, {{"Idempotency-Key", "w"}});
    CHECK(a.status == 201);
    CHECK(b.status == 200);
    CHECK(b.json["status"] == "completed");
  }
}

TEST_CASE("start refuses bad input with the right status") {
  ApiFixture f;
  SUBCASE("unknown workflow: 404") { check_problem(f.post("/v1/workflows/nope/sagas", kGood), 404); }
  SUBCASE("schema violation: 422 with JSON pointers") {
    auto r = f.post("/v1/workflows/booking/sagas", R"({"seat":"A1","amount":0})");
    check_problem(r, 422);
    REQUIRE(r.json["errors"].is_array());
    REQUIRE(r.json["errors"].size() == 1);
    CHECK(r.json["errors"][0]["pointer"] == "/amount");
    CHECK(!r.json["errors"][0]["message"].get<std::string>().empty());
  }
  SUBCASE("missing required properties point at the root") {
    auto r = f.post("/v1/workflows/booking/sagas", R"({"amount":3})");
    check_problem(r, 422);
    REQUIRE(r.json["errors"].size() == 1);
    CHECK(r.json["errors"][0]["pointer"] == "");
    CHECK(r.json["errors"][0]["message"].get<std::string>().find("seat") != std::string::npos);
  }
  SUBCASE("bad JSON: 400 saying where") {
    auto r = f.post("/v1/workflows/booking/sagas", R"({"seat": "A1", amount: 5})");
    check_problem(r, 400);
    CHECK(r.json["detail"].get<std::string>().find("byte 16") != std::string::npos);
  }
  SUBCASE("a NUL after a JSON object: 400, not the object before it (the parser would stop there)") {
    auto r = f.post("/v1/workflows/booking/sagas", std::string("{\"seat\":\"A1\",\"amount\":5}\0junk", 29));
    check_problem(r, 400);
    CHECK(r.json["detail"] == "the request body is not valid JSON (at byte 24): a NUL byte");
  }
  SUBCASE("a body that is not an object: 400") {
    auto r = f.post("/v1/workflows/booking/sagas", "[1,2]");
    check_problem(r, 400);
    CHECK(r.json["detail"].get<std::string>().find("array") != std::string::npos);
  }
  SUBCASE("deeply nested JSON: 400, not a crash") {
    check_problem(f.post("/v1/workflows/booking/sagas", std::string(100'000, '[')), 400);
  }
  SUBCASE("bad wait: 400") {
    check_problem(f.post("/v1/workflows/booking/sagas?wait=soon", kGood), 400);
    check_problem(f.post("/v1/workflows/booking/sagas?wait=-1s", kGood), 400);
  }
  SUBCASE("an empty body starts a workflow without input") {
    CHECK(f.post("/v1/workflows/slow/sagas", "").status == 201);
  }
}

TEST_CASE("list pages newest first with a next cursor") {
  ApiFixture f;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(f.post("/v1/workflows/booking/sagas?wait=10s", kGood).json["id"]);
  auto p1 = f.get("/v1/sagas?limit=2");
  REQUIRE(p1.status == 200);
  REQUIRE(p1.json["sagas"].size() == 2);
  CHECK(p1.json["sagas"][0]["id"] == ids[4]);
  CHECK(p1.json["sagas"][1]["id"] == ids[3]);
  REQUIRE(p1.json["next"].is_string());
  auto p2 = f.get("/v1/sagas?limit=2&after=" + p1.json["next"].get<std::string>());
  REQUIRE(p2.json["sagas"].size() == 2);
  CHECK(p2.json["sagas"][0]["id"] == ids[2]);
  auto p3 = f.get("/v1/sagas?limit=2&after=" + p2.json["next"].get<std::string>());
  REQUIRE(p3.json["sagas"].size() == 1);
  CHECK(p3.json["next"].is_null());

  CHECK(f.get("/v1/sagas").json["sagas"].size() == 5);
  CHECK(f.get("/v1/sagas?status=completed&workflow=booking").json["sagas"].size() == 5);
  CHECK(f.get("/v1/sagas?status=compensated").json["sagas"].size() == 0);
  CHECK(f.get("/v1/sagas?workflow=slow").json["sagas"].size() == 0);
  CHECK(f.get("/v1/sagas?status=&workflow=").json["sagas"].size() == 5);

  check_problem(f.get("/v1/sagas?status=done"), 400);
  check_problem(f.get("/v1/sagas?limit=0"), 400);
  check_problem(f.get("/v1/sagas?limit=1001"), 400);
  check_problem(f.get("/v1/sagas?limit=ten"), 400);
  CHECK(f.get("/v1/sagas?limit=1000").status == 200);
}

TEST_CASE("a saga, its events, and the saga as it was at a time") {
  ApiFixture f;
  auto started = f.post("/v1/workflows/booking/sagas?wait=10s", kGood);
  std::string id = started.json["id"];

  auto saga = f.get("/v1/sagas/" + id);
  REQUIRE(saga.status == 200);
  CHECK(saga.json["status"] == "completed");
  CHECK(saga.json["input"] == Json::parse(kGood));

  auto events = f.get("/v1/sagas/" + id + "/events");
  REQUIRE(events.status == 200);
  auto& list = events.json["events"];
  REQUIRE(list.size() >= 6);
  CHECK(list[0]["type"] == "SagaStarted");
  CHECK(list[0]["seq"] == 1);
  for (size_t i = 1; i < list.size(); ++i) CHECK(list[i]["seq"].get<int>() == static_cast<int>(i) + 1);
  CHECK(list.back()["type"] == "SagaCompleted");

  SUBCASE("?at= the start shows the saga before any step finished") {
    auto at = f.get("/v1/sagas/" + id + "?at=" + list[0]["occurred_at"].get<std::string>());
    REQUIRE(at.status == 200);
    CHECK(at.json["status"] == "running");
    CHECK(at.json["steps"][3]["status"] == "pending");
  }
  SUBCASE("?at= with an offset") {
    auto at = f.get("/v1/sagas/" + id + "?at=2999-01-01T00:00:00%2B01:00");
    REQUIRE(at.status == 200);
    CHECK(at.json["status"] == "completed");
  }
  SUBCASE("?at= before the saga existed: 404") { check_problem(f.get("/v1/sagas/" + id + "?at=2000-01-01T00:00:00Z"), 404); }
  SUBCASE("?at= that is not a time: 400") { check_problem(f.get("/v1/sagas/" + id + "?at=yesterday"), 400); }
  SUBCASE("unknown saga: 404") {
    check_problem(f.get("/v1/sagas/0190aaaa-0000-7000-8000-000000000000"), 404);
    check_problem(f.get("/v1/sagas/0190aaaa-0000-7000-8000-000000000000/events"), 404);
  }
}

TEST_CASE("cancel and retry answer 202, 409 in the wrong state, 404 for an unknown saga") {
  ApiFixture f;
  SUBCASE("cancel a running saga") {
    std::string id = f.post("/v1/workflows/slow/sagas", "").json["id"];
    auto r = f.post("/v1/sagas/" + id + "/cancel");
    CHECK(r.status == 202);
    CHECK(r.json["id"] == id);
    auto done = f.get("/v1/sagas/" + id);
    for (int i = 0; i < 200 && done.json["status"] != "compensated"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      done = f.get("/v1/sagas/" + id);
    }
    CHECK(done.json["status"] == "compensated");
  }
  SUBCASE("cancel a completed saga: 409 with the engine's reason") {
    std::string id = f.post("/v1/workflows/booking/sagas?wait=10s", kGood).json["id"];
    auto r = f.post("/v1/sagas/" + id + "/cancel");
    check_problem(r, 409);
    CHECK(r.json["detail"].get<std::string>().find("completed") != std::string::npos);
    check_problem(f.post("/v1/sagas/" + id + "/retry"), 409);
  }
  SUBCASE("retry a stuck saga") {
    auto started = f.post("/v1/workflows/fragile/sagas?wait=10s", "");
    REQUIRE(started.json["status"] == "stuck");
    std::string id = started.json["id"];
    auto r = f.post("/v1/sagas/" + id + "/retry");
    CHECK(r.status == 202);
    auto done = f.get("/v1/sagas/" + id);
    for (int i = 0; i < 200 && done.json["status"] != "compensated"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      done = f.get("/v1/sagas/" + id);
    }
    CHECK(done.json["status"] == "compensated");
  }
  SUBCASE("unknown saga") {
    check_problem(f.post("/v1/sagas/0190aaaa-0000-7000-8000-000000000000/cancel"), 404);
    check_problem(f.post("/v1/sagas/0190aaaa-0000-7000-8000-000000000000/retry"), 404);
  }
}

TEST_CASE("workflows are listed with their steps and input schema") {
  ApiFixture f;
  auto all = f.get("/v1/workflows");
  REQUIRE(all.status == 200);
  REQUIRE(all.json["workflows"].size() == 3);
  auto one = f.get("/v1/workflows/booking");
  REQUIRE(one.status == 200);
  CHECK(one.json["name"] == "booking");
  CHECK(one.json["version"] == 2);
  CHECK(one.json["description"] == "Test booking.");
  CHECK(one.json["hash"].get<std::string>().size() == 64);
  CHECK(one.json["pivot"] == "confirm");
  CHECK(one.json["steps"][1] == Json{{"name", "pay"}, {"type", "compensatable"}, {"call", "payments.charge"},
                                     {"compensate", "payments.refund"}});
  CHECK(one.json["input"]["required"] == Json{"seat", "amount"});
  CHECK(f.get("/v1/workflows/slow").json["input"].is_null());
  CHECK(f.get("/v1/workflows/slow").json["pivot"].is_null());
  check_problem(f.get("/v1/workflows/nope"), 404);
}

TEST_CASE("the cluster of a SQLite log has no nodes, and this engine is none") {
  ApiFixture f;
  auto r = f.get("/v1/cluster");
  CHECK(r.status == 200);
  CHECK(r.header(http::field::content_type).rfind("application/json", 0) == 0);
  CHECK(r.json == Json{{"node", nullptr}, {"nodes", Json::array()}});
  auto post = f.post("/v1/cluster");
  check_problem(post, 405);
  CHECK(post.header(http::field::allow) == "GET");
  check_problem(f.get("/v1/cluster/1"), 404);
}

TEST_CASE("unknown routes are 404 and wrong methods 405 with Allow") {
  ApiFixture f;
  check_problem(f.get("/v1"), 404);  // "/" is the console's redirect (console_routes_test.cpp)
  check_problem(f.get("/v2/sagas"), 404);
  check_problem(f.get("/v1/sagas/x/y/z"), 404);
  auto r = f.call(http::verb::delete_, "/v1/sagas");
  check_problem(r, 405);
  CHECK(r.header(http::field::allow) == "GET");
  auto s = f.get("/v1/workflows/booking/sagas");
  check_problem(s, 405);
  CHECK(s.header(http::field::allow) == "POST");
  check_problem(f.get("/v1/sagas/x/cancel"), 405);
  check_problem(f.post("/healthz"), 405);
  check_problem(f.get("/v1/sagas/%zz"), 400);
}

TEST_CASE("a configured token is required everywhere but /healthz") {
  ApiFixture f("s3cret-token");
  CHECK(f.get("/healthz").status == 200);
  auto missing = f.get("/v1/workflows");
  check_problem(missing, 401);
  CHECK(missing.header(http::field::www_authenticate).rfind("Bearer", 0) == 0);
  check_problem(f.get("/v1/workflows", {{"Authorization", "Bearer wrong"}}), 401);
  check_problem(f.get("/v1/workflows", {{"Authorization", "Bearer s3cret-token-longer"}}), 401);
  check_problem(f.get("/v1/workflows", {{"Authorization", "Basic s3cret-token"}}), 401);
  check_problem(f.get("/metrics"), 401);
  check_problem(f.get("/v1/cluster"), 401);
  check_problem(f.post("/v1/workflows/booking/sagas", kGood), 401);
  check_problem(f.get("/nope"), 401);  // routes are not revealed without the token
  CHECK(f.get("/v1/workflows", {{"Authorization", "Bearer s3cret-token"}}).status == 200);
  CHECK(f.get("/v1/cluster", {{"Authorization", "Bearer s3cret-token"}}).status == 200);
  CHECK(f.get("/v1/workflows", {{"Authorization", "bearer  s3cret-token "}}).status == 200);
  CHECK(f.post("/v1/workflows/booking/sagas", kGood, {{"Authorization", "Bearer s3cret-token"}}).status == 201);
}

TEST_CASE("without a token no route needs one") {
  ApiFixture f;
  CHECK(f.get("/v1/workflows").status == 200);
  CHECK(f.get("/metrics").status == 200);
}

TEST_CASE("metrics count sagas, steps and log commits") {
  ApiFixture f;
  f.post("/v1/workflows/booking/sagas?wait=10s", kGood);
  f.post("/v1/workflows/booking/sagas?wait=10s", kGood);
  f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined);
  auto r = f.get("/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.header(http::field::content_type).find("text/plain") == 0);
  const std::string& m = r.body;
  auto has = [&m](const std::string& line) {
    INFO(line);
    CHECK(m.find(line + "\n") != std::string::npos);
  };
  has("usher_sagas_started_total{workflow=\"booking\"} 3");
  has("usher_sagas_finished_total{workflow=\"booking\",status=\"completed\"} 2");
  has("usher_sagas_finished_total{workflow=\"booking\",status=\"compensated\"} 1");
  has("usher_step_attempts_total{workflow=\"booking\",step=\"pay\",service=\"payments\",operation=\"charge\","
      "kind=\"action\",outcome=\"failed\"} 1");
  has("usher_step_attempts_total{workflow=\"booking\",step=\"confirm\",service=\"tickets\",operation=\"issue\","
      "kind=\"action\",outcome=\"ok\"} 2");
  has("usher_step_duration_seconds_count{workflow=\"booking\",step=\"confirm\",service=\"tickets\","
      "operation=\"issue\",kind=\"action\"} 2");
  has("usher_step_duration_seconds_bucket{workflow=\"booking\",step=\"confirm\",service=\"tickets\","
      "operation=\"issue\",kind=\"action\",le=\"+Inf\"} 2");
  has("usher_sagas_in_memory 0");
  has("usher_node_id 0");  // a SQLite log: this engine is not a node
  CHECK(m.find("# TYPE usher_node_id gauge") != std::string::npos);
  CHECK(m.find("# TYPE usher_step_duration_seconds histogram") != std::string::npos);
  CHECK(m.find("usher_log_commits_total ") != std::string::npos);
  CHECK(m.find("usher_log_events_total ") != std::string::npos);
  CHECK(m.find("usher_log_batch_events ") != std::string::npos);
  CHECK(m.find("usher_log_commits_total 0\n") == std::string::npos);
}

TEST_CASE("usher_node_id shows the engine's node") {
  usher::api::ApiMetrics metrics;
  usher::EngineStats stats;
  stats.node = 3;
  CHECK(metrics.render(stats, nullptr, 0).find("\nusher_node_id 3\n") != std::string::npos);
}

TEST_CASE("parse_wait and token_matches") {
  using usher::api::parse_wait;
  CHECK(parse_wait("250ms") == usher::Millis{250});
  CHECK(parse_wait("5s") == usher::Millis{5000});
  CHECK(parse_wait("1m") == usher::Millis{60000});
  CHECK_FALSE(parse_wait("").has_value());
  CHECK_FALSE(parse_wait("5").has_value());
  CHECK_FALSE(parse_wait("s").has_value());
  CHECK(usher::api::token_matches("abc", "abc"));
  CHECK_FALSE(usher::api::token_matches("abd", "abc"));
  CHECK_FALSE(usher::api::token_matches("ab", "abc"));
  CHECK_FALSE(usher::api::token_matches("", "abc"));
}
