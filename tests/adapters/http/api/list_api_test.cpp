// Finding sagas through the API: GET /v1/sagas's filters (by idempotency key,
// correlation id, start time), the parameters it refuses, and GET /v1/stats.
#include <doctest/doctest.h>

#include "api_fixture.h"
#include "http/api/list_query.h"
#include "usher/inspect.h"

using usher::Json;
using usher::test::ApiFixture;
namespace http = boost::beast::http;

namespace {

const std::string kGood = R"({"seat":"A1","amount":50})";
const std::string kDeclined = R"({"seat":"A2","amount":5000})";

std::vector<std::string> ids_of(const ApiFixture::Reply& r) {
  INFO(r.body);
  REQUIRE(r.status == 200);
  std::vector<std::string> ids;
  for (const Json& s : r.json["sagas"]) ids.push_back(s["id"].get<std::string>());
  return ids;
}

std::string detail_of(const ApiFixture::Reply& r, unsigned status) {
  INFO(r.body);
  CHECK(r.status == status);
  CHECK(r.header(http::field::content_type) == "application/problem+json");
  return r.json.value("detail", std::string());
}

}  // namespace

TEST_CASE("the list query: every parameter parsed, anything else refused by name") {
  using usher::api::parse_list_query;
  auto f = parse_list_query({{"status", "stuck"},
                             {"workflow", "booking"},
                             {"limit", "7"},
                             {"after", "0190a000-0000-7000-8000-000000000001"},
                             {"idempotency_key", "order 1/2"},
                             {"correlation_id", "basket-9"},
                             {"created_after", "2026-12-06T11:00:00.000250+01:00"},
                             {"created_before", "2026-12-06T10:00:01Z"}});
  REQUIRE(f.is_ok());
  CHECK(f->status == usher::SagaStatus::kStuck);
  CHECK(f->workflow == "booking");
  CHECK(f->limit == 7);
  CHECK(f->after == "0190a000-0000-7000-8000-000000000001");
  CHECK(f->idempotency_key == "order 1/2");
  CHECK(f->correlation_id == "basket-9");
  CHECK(f->created_after == *usher::parse_time("2026-12-06T10:00:00Z") + 250);
  CHECK(f->created_before == *usher::parse_time("2026-12-06T10:00:01Z"));

  auto none = parse_list_query({{"status", ""}, {"created_after", ""}, {"after", ""}});
  REQUIRE(none.is_ok());
  CHECK_FALSE(none->status.has_value());
  CHECK_FALSE(none->created_after.has_value());
  CHECK(none->limit == 50);

  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"since", "2026-12-06T10:00:00Z"},
           {"idempotency-key", "k"},
           {"after", "garbage"},
           {"after", "0190A000-0000-7000-8000-000000000001"},  // not as usher writes ids
           {"status", "done"},
           {"limit", "0"},
           {"limit", "1001"},
           {"limit", "5x"},
           {"created_after", "yesterday"},
           {"created_before", "2026-12-06 10:00"}}) {
    INFO(name << "=" << value);
    auto bad = parse_list_query({{name, value}});
    REQUIRE_FALSE(bad.is_ok());
    CHECK(bad.status().code() == usher::StatusCode::kInvalidArgument);
    CHECK(bad.status().message().find(name) != std::string::npos);
  }
}

TEST_CASE("GET /v1/sagas refuses an unknown parameter, a malformed cursor, status or limit with 400") {
  ApiFixture f;
  REQUIRE(f.post("/v1/workflows/booking/sagas?wait=10s", kGood).status == 201);

  const std::string unknown = detail_of(f.get("/v1/sagas?since=2026-12-06T10:00:00Z"), 400);
  CHECK(unknown.find("\"since\"") != std::string::npos);
  CHECK(unknown.find("status, workflow, limit, after, idempotency_key, correlation_id, created_after, "
                     "created_before") != std::string::npos);
  CHECK(detail_of(f.get("/v1/sagas?after=garbage"), 400).find("after=\"garbage\"") != std::string::npos);
  CHECK(detail_of(f.get("/v1/sagas?status=finished"), 400).find("status=\"finished\"") != std::string::npos);
  CHECK(detail_of(f.get("/v1/sagas?limit=1001"), 400).find("1 to 1000") != std::string::npos);
  CHECK(detail_of(f.get("/v1/sagas?created_after=today"), 400).find("RFC 3339") != std::string::npos);
  CHECK(f.get("/v1/sagas?limit=1000&status=&after=").status == 200);
}

TEST_CASE("GET /v1/sagas finds sagas by idempotency key, correlation id and start time") {
  ApiFixture f;
  auto a = f.post("/v1/workflows/booking/sagas?wait=10s", kGood,
                  {{"Idempotency-Key", "order-1"}, {"X-Correlation-Id", "basket-1"}});
  auto b = f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined,
                  {{"Idempotency-Key", "order-2"}, {"X-Correlation-Id", "basket-1"}});
  auto c = f.post("/v1/workflows/booking/sagas?wait=10s", kGood, {{"Idempotency-Key", "order-3"}});
  REQUIRE(a.status == 201);
  REQUIRE(b.status == 201);
  REQUIRE(c.status == 201);
  const std::string ida = a.json["id"], idb = b.json["id"], idc = c.json["id"];

  CHECK(ids_of(f.get("/v1/sagas?idempotency_key=order-2")) == std::vector<std::string>{idb});
  CHECK(ids_of(f.get("/v1/sagas?idempotency_key=order-2&status=completed")).empty());  // compensated
  CHECK(ids_of(f.get("/v1/sagas?idempotency_key=order-9")).empty());
  CHECK(ids_of(f.get("/v1/sagas?correlation_id=basket-1")) == std::vector<std::string>{idb, ida});
  CHECK(ids_of(f.get("/v1/sagas?correlation_id=basket-1&limit=1&after=" + idb)) == std::vector<std::string>{ida});

  // Each saga ran its steps with a durable commit each, so they started in
  // different milliseconds, and created_at is shown to the millisecond.
  const std::string tb = b.json["created_at"], tc = c.json["created_at"];
  CHECK(ids_of(f.get("/v1/sagas?created_after=" + tb)) == std::vector<std::string>{idc, idb});
  CHECK(ids_of(f.get("/v1/sagas?created_before=" + tb)) == std::vector<std::string>{ida});
  CHECK(ids_of(f.get("/v1/sagas?created_after=" + tb + "&created_before=" + tc)) == std::vector<std::string>{idb});
  // The same moment with an offset, percent-encoded or not ('+' is not a space here).
  const int64_t b_us = *usher::parse_time(tb);
  std::string shifted = usher::format_time(b_us + 3600LL * 1'000'000);  // …Z one hour on
  shifted.replace(shifted.size() - 1, 1, "+01:00");
  CHECK(ids_of(f.get("/v1/sagas?created_before=" + shifted)) == std::vector<std::string>{ida});
  shifted.replace(shifted.size() - 6, 1, "%2B");
  CHECK(ids_of(f.get("/v1/sagas?created_before=" + shifted)) == std::vector<std::string>{ida});
}

TEST_CASE("GET /v1/stats counts sagas by status and names the oldest running one") {
  ApiFixture f;
  auto empty = f.get("/v1/stats");
  REQUIRE(empty.status == 200);
  CHECK(empty.json == Json{{"sagas",
                            {{"running", 0},
                             {"compensating", 0},
                             {"completed", 0},
                             {"compensated", 0},
                             {"stuck", 0},
                             {"terminated", 0}}},
                           {"total", 0},
                           {"oldest_unfinished_created_at", nullptr},
                           {"last_cursor", "0"}});

  REQUIRE(f.post("/v1/workflows/booking/sagas?wait=10s", kGood).json["status"] == "completed");
  REQUIRE(f.post("/v1/workflows/booking/sagas?wait=10s", kGood).json["status"] == "completed");
  REQUIRE(f.post("/v1/workflows/booking/sagas?wait=10s", kDeclined).json["status"] == "compensated");
  auto slow = f.post("/v1/workflows/slow/sagas", "{}");  // stays running (backs off for a minute)
  REQUIRE(slow.status == 201);

  auto stats = f.get("/v1/stats");
  REQUIRE(stats.status == 200);
  CHECK(stats.header(http::field::content_type) == "application/json");
  CHECK(stats.json["sagas"]["completed"] == 2);
  CHECK(stats.json["sagas"]["compensated"] == 1);
  CHECK(stats.json["sagas"]["running"] == 1);
  CHECK(stats.json["total"] == 4);
  CHECK(stats.json["oldest_unfinished_created_at"] == slow.json["created_at"]);
  // The feed after last_cursor holds nothing yet: it is where the feed ends.
  auto feed = f.get("/v1/events?after=" + stats.json["last_cursor"].get<std::string>());
  REQUIRE(feed.status == 200);
  CHECK(feed.json["events"].empty());
  CHECK(f.get("/v1/events").json["events"].size() > 0);
  CHECK(f.call(http::verb::post, "/v1/stats").status == 405);
}
