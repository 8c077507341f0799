// The shipped group-booking workflow redacts the card: over HTTP, the payment
// service gets the number (it answers with the last four digits), while the
// API, the CLI and the saga log only ever hold "[redacted]".
#include <doctest/doctest.h>

#include <fstream>

#include "e2e_harness.h"
#include "support/read_file.h"

using namespace usher::e2e;

namespace {

// The shipped file, pointed at this test's services.
void write_group_booking(const TempDir& dir, const Services& services) {
  std::string yaml = usher::test::read_file(USHER_SOURCE_DIR "/workflows/group-booking.yaml");
  REQUIRE(!yaml.empty());
  const std::pair<const char*, const char*> urls[] = {{"http://127.0.0.1:7101", "seats"},
                                                      {"http://127.0.0.1:7102", "payments"},
                                                      {"http://127.0.0.1:7103", "tickets"},
                                                      {"http://127.0.0.1:7104", "notifier"}};
  for (const auto& [from, service] : urls) {
    auto at = yaml.find(from);
    REQUIRE(at != std::string::npos);
    yaml.replace(at, std::string(from).size(), services.url(service));
  }
  std::ofstream out(dir.workflows() + "/group-booking.yaml");
  out << yaml;
  REQUIRE(out.good());
}

}  // namespace

TEST_CASE("group-booking's card reaches the payment service and nothing that usher stores or shows") {
  TempDir dir;
  Services services;
  write_group_booking(dir, services);
  Server server(dir);
  const std::string number = "5555555555554444";
  json input = {{"userId", "fan-9"},
                {"concertId", "arena-2026"},
                {"seats", {"C1", "C2"}},
                {"amount", 400},
                {"card", {{"number", number}, {"cvc", "987"}, {"holder", "Grace"}}}};
  auto r = server.start(input, "", "10s", "group-booking");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  json saga = r.json();
  const std::string id = saga["id"];
  REQUIRE(saga["status"] == "completed");
  CHECK(saga["steps"][2]["output"]["cardLast4"] == "4444");  // the service saw the real number
  CHECK(saga["input"]["card"] == json{{"number", "[redacted]"}, {"cvc", "[redacted]"}, {"holder", "Grace"}});

  CHECK(server.saga(id).dump().find(number) == std::string::npos);
  CHECK(server.events(id).dump().find(number) == std::string::npos);
  auto workflow = usher::test::request(server.port(), http::verb::get, "/v1/workflows/group-booking");
  CHECK(workflow.json()["redact"] == json{"/card/number", "/card/cvc"});

  // What the store holds: SQLite's file and WAL, or PostgreSQL's rows as text.
  std::string stored;
  if (usher::test::testing_postgres()) {
    const std::string log = dir.file("usher.db");
    stored = usher::test::query_log(log, "SELECT string_agg(e::text, ' ') FROM saga_events AS e") +
             usher::test::query_log(log, "SELECT string_agg(s::text, ' ') FROM sagas AS s");
  } else {
    stored = usher::test::read_file(dir.db()) + usher::test::read_file(dir.db() + "-wal");
  }
  CHECK(stored.find("[redacted]") != std::string::npos);
  CHECK(stored.find(number) == std::string::npos);
}
