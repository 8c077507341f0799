// `usher serve` end to end: the real binary on 127.0.0.1 port 0, a temp log,
// the shipped workflows, and the example step services on port 0.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "serve/serve_rig.h"
#include "serve/test_http.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

using nlohmann::json;
namespace http = boost::beast::http;
using usher::test::Child;

namespace {

using usher::test::Server;
using usher::test::Services;
using usher::test::TempDir;

const std::string kBooking = R"({"userId":"u1","concertId":"c1","seat":"A1","amount":120})";
const std::string kDeclined = R"({"userId":"u2","concertId":"c1","seat":"B7","amount":5000})";

}  // namespace

TEST_CASE("usher serve books a concert ticket and compensates a declined payment") {
  TempDir dir;
  Services services;
  Server server(dir);

  CHECK(usher::test::request(server.port, http::verb::get, "/healthz").status == 200);

  auto done = usher::test::request(server.port, http::verb::post, "/v1/workflows/concert-booking/sagas?wait=20s",
                                   kBooking, {{"Idempotency-Key", "order-42"}}, std::chrono::seconds(30));
  REQUIRE(done.status == 201);
  json saga = done.json();
  CHECK(saga["status"] == "completed");
  CHECK(saga["steps"].size() == 4);
  CHECK(saga["steps"][2]["output"]["ticketId"].is_string());
  CHECK(done.header("Location") == "/v1/sagas/" + saga["id"].get<std::string>());

  auto again = usher::test::request(server.port, http::verb::post, "/v1/workflows/concert-booking/sagas", kBooking,
                                    {{"Idempotency-Key", "order-42"}});
  CHECK(again.status == 200);
  CHECK(again.json()["id"] == saga["id"]);

  auto declined = usher::test::request(server.port, http::verb::post, "/v1/workflows/concert-booking/sagas?wait=20s",
                                       kDeclined, {}, std::chrono::seconds(30));
  REQUIRE(declined.status == 201);
  json d = declined.json();
  CHECK(d["status"] == "compensated");
  CHECK(d["steps"][0]["status"] == "compensated");
  CHECK(d["steps"][1]["status"] == "failed");
  CHECK(d["steps"][2]["status"] == "pending");

  auto events = usher::test::request(server.port, http::verb::get, "/v1/sagas/" + d["id"].get<std::string>() + "/events");
  REQUIRE(events.status == 200);
  CHECK(events.json()["events"].back()["type"] == "SagaCompensated");

  auto list = usher::test::request(server.port, http::verb::get, "/v1/sagas?workflow=concert-booking&limit=10");
  CHECK(list.json()["sagas"].size() == 2);

  auto metrics = usher::test::request(server.port, http::verb::get, "/metrics");
  CHECK(metrics.body.find("usher_sagas_started_total{workflow=\"concert-booking\"} 2") != std::string::npos);

  auto bad = usher::test::request(server.port, http::verb::post, "/v1/workflows/concert-booking/sagas",
                                  R"({"userId":"u1","concertId":"c1","seat":"A1","amount":0})");
  CHECK(bad.status == 422);
  CHECK(bad.json()["errors"][0]["pointer"] == "/amount");

  auto stopped = server.child.signal_and_wait(SIGTERM, std::chrono::seconds(5));
  REQUIRE(stopped.has_value());
  CHECK(*stopped == 0);
}

TEST_CASE("usher serve refuses a 10 MiB body with 413 while serving a concurrent request") {
  TempDir dir;
  Services services;
  Server server(dir);
  std::string head =
      "POST /v1/workflows/concert-booking/sagas HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " + std::to_string(10 << 20) + "\r\n\r\n";
  usher::test::HttpReply big, normal;
  std::thread big_thread([&] { big = usher::test::raw_request(server.port, head + std::string(10 << 20, ' ')); });
  std::thread normal_thread([&] {
    normal = usher::test::request(server.port, http::verb::post, "/v1/workflows/concert-booking/sagas?wait=20s",
                                  kBooking, {}, std::chrono::seconds(30));
  });
  big_thread.join();
  normal_thread.join();
  CHECK(big.status == 413);
  CHECK(big.header("Content-Type") == "application/problem+json");
  CHECK(normal.status == 201);
  CHECK(normal.json()["status"] == "completed");
  CHECK(usher::test::request(server.port, http::verb::get, "/healthz").status == 200);
}

TEST_CASE("usher serve requires the token from the token file") {
  TempDir dir;
  Services services;
  std::string token_file = dir.file("token");
  {
    std::ofstream out(token_file);
    out << "  tok-3f9a1c\n\n";
  }
  SUBCASE("a token file others can read is refused") {
    ::chmod(token_file.c_str(), 0644);
    Child refused(Server::argv(dir, {"--token-file", token_file}));
    auto status = refused.signal_and_wait(0, std::chrono::seconds(10));
    REQUIRE(status.has_value());
    CHECK(*status == 2);
  }
  SUBCASE("with a private token file") {
    ::chmod(token_file.c_str(), 0600);
    Server server(dir, {"--token-file", token_file});
    CHECK(usher::test::request(server.port, http::verb::get, "/healthz").status == 200);
    auto denied = usher::test::request(server.port, http::verb::get, "/v1/workflows");
    CHECK(denied.status == 401);
    CHECK(denied.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
    CHECK(usher::test::request(server.port, http::verb::get, "/v1/workflows", "", {{"Authorization", "Bearer nope"}})
              .status == 401);
    auto ok = usher::test::request(server.port, http::verb::get, "/v1/workflows", "",
                                   {{"Authorization", "Bearer tok-3f9a1c"}});
    CHECK(ok.status == 200);
    CHECK(ok.json()["workflows"].size() == 3);
  }
}

TEST_CASE("usher serve exits 0 within 5 s of SIGTERM, also with a request waiting") {
  TempDir dir;
  Services services;
  // The hold hangs: usher waits the grace for it, then leaves it to the next start.
  Server server(dir, {"--shutdown-grace", "1s"});
  // A ?wait on a saga that cannot finish: the seats service hangs.
  auto ctl = usher::test::request(
      static_cast<uint16_t>(std::stoi(std::string(std::getenv("SEATS_URL")).substr(17))), http::verb::post,
      "/_control", R"({"operation":"hold","mode":"hang"})");
  CHECK(ctl.status == 200);
  usher::test::HttpReply waited;
  std::thread waiting([&] {
    waited = usher::test::request(server.port, http::verb::post, "/v1/workflows/concert-booking/sagas?wait=60s",
                                  kBooking, {}, std::chrono::seconds(10));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto before = std::chrono::steady_clock::now();
  auto status = server.child.signal_and_wait(SIGTERM, std::chrono::seconds(5));
  waiting.join();
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));
  // The saga is durable: the cut-short wait answers with it, never a bare 503.
  CHECK(waited.status == 202);
  CHECK(waited.json()["status"] == "running");
  CHECK(waited.header("Location") == "/v1/sagas/" + waited.json()["id"].get<std::string>());
}

TEST_CASE("usher serve refuses to start on an invalid workflow, naming file, line and column") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("wf"));
  {
    std::ofstream out(dir.file("wf/bad.yaml"));
    out << "saga: bad\nversion: 1\nservices:\n  s: { local: {} }\nsteps:\n  - name: a\n    call: s.x\n    compensation: {}\n";
  }
  Child child({USHER_BINARY_DIR "/cli/usher", "serve", "--db", dir.file("u.db"), "--workflows", dir.file("wf"),
               "--listen", "127.0.0.1:0"});
  auto status = child.signal_and_wait(0, std::chrono::seconds(10));
  REQUIRE(status.has_value());
  CHECK(*status == 1);
}
