// The HTTP step adapter against small Beast servers on 127.0.0.1 (test_server.h).
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "call_helpers.h"
#include "http/step_client.h"
#include "test_server.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

namespace {

TestReply reply(unsigned status, std::string body,
                std::vector<std::pair<std::string, std::string>> headers = {}) {
  TestReply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

// A port nothing listens on: bound once, then closed.
unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("sends POST {url}/{operation} with the JSON body and the usher headers") {
  TestServer server([](const SeenRequest&) { return reply(200, R"({"holdId":"H-1"})"); });
  HttpStepAdapter adapter;

  SUBCASE("default: POST to the operation under the base path") {
    StepResult r = call_sync(adapter, make_call(server.url() + "/api"));
    REQUIRE(r.outcome == Outcome::kOk);
    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    const auto& req = seen[0];
    CHECK(req.method == "POST");
    CHECK(req.target == "/api/hold");
    CHECK(Json::parse(req.body) == Json{{"concertId", "C-7"}, {"seat", "A1"}});
    CHECK(req.headers.at("content-type") == "application/json");
    CHECK(req.headers.at("idempotency-key") == "0190a1b2-0000-7000-8000-000000000001:reserve:action");
    CHECK(req.headers.at("x-usher-saga-id") == "0190a1b2-0000-7000-8000-000000000001");
    CHECK(req.headers.at("x-usher-step") == "reserve");
    CHECK(req.headers.at("x-usher-attempt") == "2");
    CHECK(req.headers.at("x-correlation-id") == "corr-42");
    CHECK(req.headers.at("traceparent") == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    CHECK(req.headers.at("host") == "127.0.0.1:" + std::to_string(server.port()));
    CHECK(req.headers.at("user-agent") == "usher/0.1");
    CHECK(req.headers.at("content-length") == std::to_string(req.body.size()));
  }
  SUBCASE("no correlation id or traceparent: the headers are left out") {
    StepCall c = make_call(server.url());
    c.correlation_id.clear();
    c.traceparent.clear();
    REQUIRE(call_sync(adapter, std::move(c)).outcome == Outcome::kOk);
    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].target == "/hold");
    CHECK_FALSE(seen[0].headers.contains("x-correlation-id"));
    CHECK_FALSE(seen[0].headers.contains("traceparent"));
  }
  SUBCASE("the step's http override sets the method and the path under the base path") {
    StepCall c = make_call(server.url() + "/api/");
    c.http_method = "DELETE";
    c.http_path = "/holds/H-1";
    REQUIRE(call_sync(adapter, std::move(c)).outcome == Outcome::kOk);
    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].method == "DELETE");
    CHECK(seen[0].target == "/api/holds/H-1");
  }
}

TEST_CASE("replies are classified as DESIGN.md section 3 says") {
  std::atomic<int> next_status{200};
  std::string next_body;
  std::mutex mu;
  TestServer server([&](const SeenRequest&) {
    std::lock_guard lock(mu);
    return reply(static_cast<unsigned>(next_status.load()), next_body);
  });
  HttpStepAdapter adapter;
  auto answer = [&](int status, std::string body) {
    {
      std::lock_guard lock(mu);
      next_status = status;
      next_body = std::move(body);
    }
    return call_sync(adapter, make_call(server.url(), "payments", "charge", "pay"));
  };

  SUBCASE("200 with JSON: ok, output is the body") {
    StepResult r = answer(200, R"({"paymentId":"P-1","amount":10})");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json{{"paymentId", "P-1"}, {"amount", 10}});
    CHECK(r.error.empty());
  }
  SUBCASE("200 empty: ok with {}") {
    StepResult r = answer(200, "");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
  }
  SUBCASE("201: ok") {
    StepResult r = answer(201, R"({"id":1})");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json{{"id", 1}});
  }
  SUBCASE("422: failed, with status and body") {
    StepResult r = answer(422, R"({"error":"card declined"})");
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == R"(payments.charge: 422 {"error":"card declined"})");
  }
  SUBCASE("404 without a body: failed, with the reason phrase") {
    StepResult r = answer(404, "");
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == "payments.charge: 404 Not Found");
  }
  SUBCASE("408, 425, 429, 500, 503: transient") {
    for (int status : {408, 425, 429, 500, 503}) {
      CAPTURE(status);
      StepResult r = answer(status, R"({"error":"busy"})");
      CHECK(r.outcome == Outcome::kTransient);
      CHECK(r.error == "payments.charge: " + std::to_string(status) + R"( {"error":"busy"})");
      CHECK_FALSE(r.retry_after.has_value());
    }
  }
  SUBCASE("2xx that is not JSON: a success with output {} and a note") {
    StepResult r = answer(200, "<html>oops</html>");
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
    CHECK(r.note == "the reply is not JSON: <html>oops</html>");
    CHECK(r.error.empty());
  }
  SUBCASE("2xx nested deeper than 64 levels: a success with output {}, not parsed") {
    StepResult r = answer(200, std::string(400'000, '['));
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
    CHECK(r.note == "the reply is nested deeper than 64 levels");
  }
}

TEST_CASE("Retry-After on a transient answer becomes retry_after") {
  TestServer server([](const SeenRequest& req) {
    if (req.index_on_connection == 1) return reply(503, "", {{"Retry-After", "7"}});
    return reply(429, "", {{"Retry-After", "Fri, 31 Dec 1999 23:59:59 GMT"}});
  });
  HttpStepAdapter adapter;
  StepResult r = call_sync(adapter, make_call(server.url()));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.error == "seats.hold: 503 Service Unavailable");
  CHECK(r.retry_after == Millis(7000));
  r = call_sync(adapter, make_call(server.url()));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.retry_after == Millis(0));  // a date in the past: retry now
}

TEST_CASE("a refused connection is transient") {
  HttpStepAdapter adapter;
  const auto port = free_port();
  StepResult r = call_sync(adapter, make_call("http://127.0.0.1:" + std::to_string(port)));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.error == "step \"reserve\": cannot connect to 127.0.0.1:" + std::to_string(port) +
                       ": Connection refused");
}

TEST_CASE("no answer within the timeout is kTimeout and the connection is not reused") {
  std::atomic<bool> hang{true};
  TestServer server([&](const SeenRequest&) {
    TestReply r = reply(200, "{}");
    r.hang = hang.load();
    return r;
  });
  HttpStepAdapter adapter;
  StepCall c = make_call(server.url());
  c.timeout = 200ms;
  const auto start = std::chrono::steady_clock::now();
  StepResult r = call_sync(adapter, std::move(c));
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(r.outcome == Outcome::kTimeout);
  CHECK(r.error == "step \"reserve\": no answer within 200ms");

  hang = false;
  CHECK(call_sync(adapter, make_call(server.url())).outcome == Outcome::kOk);
  CHECK(server.connections_accepted() == 2);
}

TEST_CASE("a reply larger than the cap is transient") {
  TestServer server([](const SeenRequest&) { return reply(200, "\"" + std::string(2 << 20, 'x') + "\""); });
  HttpStepAdapterOptions options;
  CHECK(options.max_response_bytes == (1u << 20));
  HttpStepAdapter adapter(options);
  StepResult r = call_sync(adapter, make_call(server.url()));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.error == "step \"reserve\": reply larger than 1 MiB");
}

TEST_CASE("sequential calls reuse one keep-alive connection") {
  TestServer server([](const SeenRequest&) { return reply(200, R"({"ok":true})"); });
  HttpStepAdapter adapter;
  for (int i = 0; i < 100; ++i) REQUIRE(call_sync(adapter, make_call(server.url())).outcome == Outcome::kOk);
  CHECK(server.connections_accepted() == 1);
  CHECK(server.requests() == 100);
  CHECK(adapter.stats().connections_opened == 1);
}

TEST_CASE("no more than the bound of connections are open at once; the rest wait") {
  TestServer server([](const SeenRequest&) {
    TestReply r = reply(200, "{}");
    r.delay = 50ms;
    return r;
  });
  HttpStepAdapterOptions options;
  options.max_connections_per_endpoint = 4;
  HttpStepAdapter adapter(options);
  constexpr int kCalls = 40;
  std::vector<std::future<StepResult>> results;
  for (int i = 0; i < kCalls; ++i) {
    auto p = std::make_shared<std::promise<StepResult>>();
    results.push_back(p->get_future());
    adapter.dispatch(make_call(server.url()), [p](StepResult r) { p->set_value(std::move(r)); });
  }
  for (auto& f : results) {
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    CHECK(f.get().outcome == Outcome::kOk);
  }
  CHECK(server.requests() == kCalls);
  CHECK(server.max_open() <= 4);
  CHECK(server.connections_accepted() == 4);
}

TEST_CASE("a call waiting for a connection gives up at its deadline, transient") {
  TestServer server([](const SeenRequest& req) {
    TestReply r = reply(200, "{}");
    r.hang = req.connection == 1 && req.index_on_connection == 1;
    return r;
  });
  HttpStepAdapterOptions options;
  options.max_connections_per_endpoint = 1;
  HttpStepAdapter adapter(options);
  auto p = std::make_shared<std::promise<StepResult>>();
  auto hung = p->get_future();
  StepCall first = make_call(server.url());
  first.timeout = 1500ms;
  adapter.dispatch(std::move(first), [p](StepResult r) { p->set_value(std::move(r)); });
  std::this_thread::sleep_for(100ms);

  StepCall second = make_call(server.url());
  second.timeout = 200ms;
  StepResult r = call_sync(adapter, std::move(second));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.error == "step \"reserve\": no connection to 127.0.0.1:" + std::to_string(server.port()) +
                       " free within 200ms (all 1 busy)");
  REQUIRE(hung.wait_for(15s) == std::future_status::ready);
  CHECK(hung.get().outcome == Outcome::kTimeout);
  CHECK(server.requests() == 1);  // the second call was never sent
}

TEST_CASE("a server closing idle keep-alive connections does not make a call fail") {
  TestServer server([](const SeenRequest&) { return reply(200, "{}"); });
  HttpStepAdapter adapter;
  REQUIRE(call_sync(adapter, make_call(server.url())).outcome == Outcome::kOk);
  server.close_idle_connections();
  std::this_thread::sleep_for(50ms);  // let the FIN arrive
  StepResult r = call_sync(adapter, make_call(server.url()));
  CHECK(r.outcome == Outcome::kOk);
  CHECK(server.connections_accepted() == 2);
  CHECK(server.requests() == 2);
}

TEST_CASE("a request lost on a reused connection is sent once more on a fresh one") {
  SUBCASE("the server drops the connection on its second request: one silent retry") {
    TestServer server([](const SeenRequest& req) {
      TestReply r = reply(200, R"({"n":)" + std::to_string(req.connection) + "}");
      r.drop = req.index_on_connection == 2;  // as if it closed the idle connection as we wrote
      return r;
    });
    HttpStepAdapter adapter;
    REQUIRE(call_sync(adapter, make_call(server.url())).outcome == Outcome::kOk);
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json{{"n", 2}});
    CHECK(adapter.stats().stale_retries == 1);
    CHECK(server.requests() == 3);
  }
  SUBCASE("a fresh connection dropped before the reply is not retried: transient") {
    TestServer server([](const SeenRequest&) {
      TestReply r = reply(200, "{}");
      r.drop = true;
      return r;
    });
    HttpStepAdapter adapter;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTransient);
    CHECK(r.error.starts_with("step \"reserve\": connection to 127.0.0.1:" + std::to_string(server.port()) +
                              " closed before the reply ended: "));
    CHECK(server.requests() == 1);
    CHECK(adapter.stats().stale_retries == 0);
  }
  SUBCASE("Connection: close from the server: the next call opens a new connection") {
    TestServer server([](const SeenRequest&) {
      TestReply r = reply(200, "{}");
      r.close_after = true;
      return r;
    });
    HttpStepAdapter adapter;
    for (int i = 0; i < 3; ++i) REQUIRE(call_sync(adapter, make_call(server.url())).outcome == Outcome::kOk);
    CHECK(server.connections_accepted() == 3);
    CHECK(adapter.stats().stale_retries == 0);
  }
}

TEST_CASE("https and malformed service URLs are refused as business failures") {
  HttpStepAdapter adapter;
  StepResult r = call_sync(adapter, make_call("https://127.0.0.1:1"));
  CHECK(r.outcome == Outcome::kFailed);
  CHECK(r.error.starts_with("step \"reserve\": service \"seats\": service URL \"https://127.0.0.1:1\": "
                            "https is not supported"));
}

TEST_CASE("shutdown answers calls in progress with \"adapter shut down\"") {
  TestServer server([](const SeenRequest&) {
    TestReply r = reply(200, "{}");
    r.hang = true;
    return r;
  });
  HttpStepAdapter adapter;
  auto p = std::make_shared<std::promise<StepResult>>();
  auto pending = p->get_future();
  StepCall c = make_call(server.url());
  c.timeout = 10s;
  adapter.dispatch(std::move(c), [p](StepResult r) { p->set_value(std::move(r)); });
  while (server.requests() == 0) std::this_thread::sleep_for(5ms);
  const auto start = std::chrono::steady_clock::now();
  adapter.shutdown();
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  REQUIRE(pending.wait_for(1s) == std::future_status::ready);
  StepResult r = pending.get();
  CHECK(r.outcome == Outcome::kTransient);
  CHECK(r.error == "adapter shut down");

  // After shutdown, dispatch answers at once on the calling thread.
  std::optional<StepResult> late;
  adapter.dispatch(make_call(server.url()), [&](StepResult res) { late = std::move(res); });
  REQUIRE(late.has_value());
  CHECK(late->error == "adapter shut down");
  adapter.shutdown();  // twice is harmless
}

TEST_CASE("many concurrent calls through one I/O thread all complete") {
  TestServer server([](const SeenRequest&) { return reply(200, R"({"ok":true})"); });
  HttpStepAdapter adapter;
  constexpr int kCalls = 2000;
  std::atomic<int> ok{0}, finished{0};
  std::promise<void> all;
  std::string first_error;  // written on the adapter's single I/O thread
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    StepCall c = make_call(server.url());
    c.timeout = 20s;  // generous: sanitizer builds are slow
    adapter.dispatch(std::move(c), [&](StepResult r) {
      if (r.outcome == Outcome::kOk) ++ok;
      else if (first_error.empty()) first_error = r.error;
      if (++finished == kCalls) all.set_value();
    });
  }
  REQUIRE(all.get_future().wait_for(60s) == std::future_status::ready);
  MESSAGE(kCalls, " calls in ", std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start).count(), " ms");
  CHECK_MESSAGE(ok == kCalls, first_error);
  CHECK(server.connections_accepted() <= 64);
}

TEST_CASE("a host name is resolved once and its connections are reused") {
  TestServer server([](const SeenRequest&) { return reply(200, "{}"); });
  HttpStepAdapter adapter;
  const std::string url = "http://localhost:" + std::to_string(server.port());
  for (int i = 0; i < 3; ++i) REQUIRE(call_sync(adapter, make_call(url)).outcome == Outcome::kOk);
  CHECK(server.connections_accepted() == 1);
  CHECK(server.seen().at(0).headers.at("host") == "localhost:" + std::to_string(server.port()));
}
