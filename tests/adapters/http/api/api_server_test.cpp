// The server's own limits, over a real socket on 127.0.0.1 (port 0).
#include <doctest/doctest.h>

#include <thread>

#include "server_fixture.h"
#include "serve/test_http.h"

using usher::Json;
using usher::test::ApiFixture;
namespace http = boost::beast::http;
namespace api = usher::api;

using usher::test::ServerFixture;

TEST_CASE("the server answers over a socket and keeps the connection alive") {
  ServerFixture f;
  auto r = usher::test::request(f.port, http::verb::post, "/v1/workflows/booking/sagas?wait=5s",
                                R"({"seat":"A1","amount":5})");
  CHECK(r.status == 201);
  CHECK(r.json()["status"] == "completed");
  // Two requests on one connection.
  std::string two =
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto first = usher::test::raw_request(f.port, two);
  CHECK(first.status == 200);
}

TEST_CASE("a header larger than the limit gets 431") {
  api::ApiServerOptions o;
  o.max_header_bytes = 4096;
  ServerFixture f(o);
  auto r = usher::test::request(f.port, http::verb::get, "/healthz", "", {{"X-Big", std::string(8000, 'a')}});
  CHECK(r.status == 431);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(usher::test::request(f.port, http::verb::get, "/healthz").status == 200);
}

TEST_CASE("a body larger than the limit gets 413 without being read, and the server serves others") {
  api::ApiServerOptions o;
  o.max_body_bytes = 1024;
  ServerFixture f(o);
  SUBCASE("declared by Content-Length") {
    std::string head =
        "POST /v1/workflows/booking/sagas HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 4000000\r\n\r\n";
    auto r = usher::test::raw_request(f.port, head + std::string(4'000'000, ' '));
    CHECK(r.status == 413);
    CHECK(r.json()["status"] == 413);
  }
  SUBCASE("chunked, without a length") {
    std::string req =
        "POST /v1/workflows/booking/sagas HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 10; ++i) req += "200\r\n" + std::string(512, ' ') + "\r\n";
    req += "0\r\n\r\n";
    auto r = usher::test::raw_request(f.port, req);
    CHECK(r.status == 413);
  }
  SUBCASE("Expect: 100-continue is refused before the body is sent") {
    std::string head =
        "POST /v1/workflows/booking/sagas HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: 4000000\r\n\r\n";
    CHECK(usher::test::raw_request(f.port, head).status == 413);
  }
  CHECK(usher::test::request(f.port, http::verb::post, "/v1/workflows/booking/sagas", R"({"seat":"A","amount":1})")
            .status == 201);
}

TEST_CASE("malformed requests get 400 and the server keeps running") {
  ServerFixture f;
  auto r = usher::test::raw_request(f.port, "NOT HTTP AT ALL\r\n\r\n");
  CHECK(r.status == 400);
  CHECK(usher::test::request(f.port, http::verb::get, "/healthz").status == 200);
}

TEST_CASE("past max_connections a newcomer takes the place of the longest-waiting idle connection") {
  api::ApiServerOptions o;
  o.max_connections = 2;
  ServerFixture f(o);
  namespace asio = boost::asio;
  asio::io_context io;
  std::vector<asio::ip::tcp::socket> held;
  for (int i = 0; i < 2; ++i) {
    held.emplace_back(io);
    held.back().connect({asio::ip::make_address("127.0.0.1"), f.port});
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // an order to follow
  }
  for (int i = 0; i < 100 && f.server->connections() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(f.server->connections() == 2);
  CHECK(usher::test::request(f.port, http::verb::get, "/healthz", "", {}, std::chrono::seconds(3)).status == 200);
  CHECK(f.server->evictions() == 1);
  // The first socket, the one that waited longest, was closed; the other not.
  char byte;
  boost::system::error_code ec;
  held[0].read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::eof);
  held[1].non_blocking(true);
  held[1].read_some(asio::buffer(&byte, 1), ec);
  CHECK(ec == asio::error::would_block);
}

TEST_CASE("past max_connections with every connection busy, a newcomer gets 503 and the busy ones are answered") {
  api::ApiServerOptions o;
  o.max_connections = 2;
  ServerFixture f(o);
  std::vector<std::thread> polls;
  std::vector<int> answered(2, 0);
  for (int i = 0; i < 2; ++i)
    polls.emplace_back([&, i] {
      answered[i] = usher::test::request(f.port, http::verb::get, "/v1/events?wait=2s", "", {}, std::chrono::seconds(5)).status;
    });
  for (int i = 0; i < 100 && f.server->connections() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // both requests read and waiting
  auto r = usher::test::request(f.port, http::verb::get, "/healthz", "", {}, std::chrono::seconds(3));
  CHECK(r.status == 503);
  CHECK(r.header("Retry-After") == "1");
  for (auto& t : polls) t.join();
  CHECK(answered == std::vector<int>{200, 200});
  CHECK(f.server->evictions() == 0);
  CHECK(usher::test::request(f.port, http::verb::get, "/healthz").status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after the idle timeout") {
  api::ApiServerOptions o;
  o.idle_timeout = usher::Millis{200};
  ServerFixture f(o);
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), f.port});
  for (int i = 0; i < 100 && f.server->connections() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(f.server->connections() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(f.server->connections() == 0);
}

TEST_CASE("stop answers a request in progress and closes idle connections") {
  ServerFixture f;
  std::string id = f.post("/v1/workflows/slow/sagas", "").json["id"];
  usher::test::HttpReply waited;
  std::thread waiter([&] {
    waited = usher::test::request(f.port, http::verb::get, "/healthz");
  });
  waiter.join();
  CHECK(waited.status == 200);
  auto before = std::chrono::steady_clock::now();
  f.server->stop(usher::Millis{500});
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(2));
  CHECK(usher::test::request(f.port, http::verb::get, "/healthz", "", {}, std::chrono::seconds(1)).status == 0);
}

// The engine may answer a request after the server that took it is gone (a
// ?wait still waiting when the server stops): that answer must be dropped,
// not posted to a destroyed io_context (a heap-use-after-free under ASan).
TEST_CASE("an answer that arrives after the server is destroyed is dropped safely") {
  ServerFixture f;
  usher::test::HttpReply waited;
  std::thread waiter([&] {
    waited = usher::test::request(f.port, http::verb::post, "/v1/workflows/slow/sagas?wait=60s", "", {},
                                  std::chrono::seconds(20));
  });
  std::string id;
  for (int i = 0; i < 500 && id.empty(); ++i) {
    auto list = f.get("/v1/sagas?workflow=slow");
    if (list.status == 200 && !list.json["sagas"].empty()) id = list.json["sagas"][0]["id"];
    else std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE_MESSAGE(!id.empty(), "the slow saga never started");
  f.server->stop(usher::Millis{0});
  waiter.join();
  CHECK(waited.status == 503);
  CHECK(waited.header("Retry-After") == "1");  // every 503 says when to come back
  f.server.reset();
  // The saga settles now; the engine answers the waiting request it still holds.
  CHECK(f.post("/v1/sagas/" + id + "/cancel").status == 202);
  for (int i = 0; i < 500 && f.get("/v1/sagas/" + id).json["status"] != "compensated"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(f.get("/v1/sagas/" + id).json["status"] == "compensated");
}
