// The HTTP step adapter against small Beast servers on 127.0.0.1 (test_server.h).
#include <doctest/doctest.h>

#include "call_helpers.h"
#include "http/step/http_step_adapter.h"
#include "usher/service_text.h"
#include "test_server.h"

using namespace usher;
using namespace usher::test;
using namespace std::chrono_literals;

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
  SUBCASE("a call sent by a cluster node carries X-Usher-Node with its id") {
    StepCall c = make_call(server.url());
    c.node = 7;
    REQUIRE(call_sync(adapter, std::move(c)).outcome == Outcome::kOk);
    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].headers.at("x-usher-node") == "7");
  }
  SUBCASE("a call from an engine that is not a node (node 0) carries no X-Usher-Node") {
    StepCall c = make_call(server.url());
    c.node = 0;
    REQUIRE(call_sync(adapter, std::move(c)).outcome == Outcome::kOk);
    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    CHECK_FALSE(seen[0].headers.contains("x-usher-node"));
  }
  SUBCASE("a call the engine may no longer send when it would leave is answered not sent, and nothing reaches the service") {
    StepCall c = make_call(server.url());
    c.node = 3;
    int asked = 0;
    c.may_send = [&asked] {
      ++asked;
      return false;
    };
    StepResult r = call_sync(adapter, std::move(c));
    CHECK(asked == 1);
    CHECK(r.outcome == Outcome::kTransient);
    CHECK_FALSE(r.sent);
    CHECK(r.error.find("node 3 is not sure it still holds its lease") != std::string::npos);
    CHECK(server.seen().empty());
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

TEST_CASE("replies are classified as docs/semantics.md says") {
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

TEST_CASE("a refused connection never left: transient, not sent") {
  HttpStepAdapter adapter;
  const auto port = dead_port();
  StepResult r = call_sync(adapter, make_call("http://127.0.0.1:" + std::to_string(port)));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK_FALSE(r.sent);
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

TEST_CASE("a reply larger than the cap: after a 2xx a success of unknown output, else its status decides") {
  std::atomic<unsigned> status{200};
  TestServer server([&](const SeenRequest&) { return reply(status.load(), "\"" + std::string(2 << 20, 'x') + "\""); });
  HttpStepAdapterOptions options;
  CHECK(options.max_response_bytes == (1u << 20));
  HttpStepAdapter adapter(options);
  SUBCASE("200: ok, output {}, the note says why") {
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kOk);
    CHECK(r.output == Json::object());
    CHECK(r.note == "the reply is larger than 1 MiB");
  }
  SUBCASE("503: transient, quoting the status") {
    status = 503;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTransient);
    CHECK(r.error == "seats.hold: 503 Service Unavailable (the reply is larger than 1 MiB)");
  }
  SUBCASE("422: failed, quoting the status") {
    status = 422;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kFailed);
    CHECK(r.error == "seats.hold: 422 Unprocessable Entity (the reply is larger than 1 MiB)");
  }
  CHECK(server.requests() == 1);
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

TEST_CASE("waiting for a pooled connection is not part of the attempt: its timeout starts at on_sending") {
  TestServer server([](const SeenRequest& req) {
    TestReply r = reply(200, R"({"n":)" + std::to_string(req.index_on_connection) + "}");
    if (req.index_on_connection == 1) r.delay = 600ms;
    return r;
  });
  HttpStepAdapterOptions options;
  options.max_connections_per_endpoint = 1;
  HttpStepAdapter adapter(options);
  CHECK(adapter.reports_sending());

  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<Clock::time_point> first_sent, second_sent;
  auto p = std::make_shared<std::promise<StepResult>>();
  auto slow = p->get_future();
  StepCall first = make_call(server.url());
  first.timeout = 5s;
  first.on_sending = [&] {
    std::lock_guard lock(mu);
    first_sent.push_back(Clock::now());
  };
  adapter.dispatch(std::move(first), [p](StepResult r) { p->set_value(std::move(r)); });
  while (server.requests() == 0) std::this_thread::sleep_for(5ms);

  // The second call waits about 600 ms for the only connection, three times
  // its own timeout, and is sent when it gets it.
  StepCall second = make_call(server.url());
  second.timeout = 200ms;
  second.on_sending = [&] {
    std::lock_guard lock(mu);
    second_sent.push_back(Clock::now());
  };
  const auto dispatched = Clock::now();
  StepResult r = call_sync(adapter, std::move(second));
  CHECK(r.outcome == Outcome::kOk);
  CHECK(r.output == Json{{"n", 2}});
  REQUIRE(slow.wait_for(15s) == std::future_status::ready);
  CHECK(slow.get().output == Json{{"n", 1}});

  std::lock_guard lock(mu);
  CHECK(first_sent.size() == 1);
  REQUIRE(second_sent.size() == 1);
  CHECK(second_sent[0] - dispatched >= 400ms);  // when the connection came back, not at dispatch
  CHECK(server.connections_accepted() == 1);
}

TEST_CASE("a waiting call has no deadline of its own; shutdown wakes it, not sent") {
  TestServer server([](const SeenRequest&) {
    TestReply r = reply(200, "{}");
    r.hang = true;
    return r;
  });
  HttpStepAdapterOptions options;
  options.max_connections_per_endpoint = 1;
  HttpStepAdapter adapter(options);
  Results first, second;
  StepCall hung = make_call(server.url());
  hung.timeout = 10s;
  adapter.dispatch(std::move(hung), first.callback());
  while (server.requests() == 0) std::this_thread::sleep_for(5ms);
  std::atomic<int> sending{0};
  StepCall waiting = make_call(server.url());
  waiting.timeout = 100ms;
  waiting.on_sending = [&] { ++sending; };
  adapter.dispatch(std::move(waiting), second.callback());
  std::this_thread::sleep_for(400ms);  // four times its timeout
  CHECK(second.count() == 0);
  CHECK(sending == 0);

  adapter.shutdown();
  StepResult r = second.first();
  CHECK(r.outcome == Outcome::kTransient);
  CHECK_FALSE(r.sent);
  CHECK(r.error == "adapter shut down");
  CHECK(sending == 0);
  CHECK(first.first().sent);  // its request was written
  CHECK(server.requests() == 1);
}

TEST_CASE("a full wait queue answers at once: never sent") {
  TestServer server([](const SeenRequest&) {
    TestReply r = reply(200, "{}");
    r.delay = 300ms;
    return r;
  });
  HttpStepAdapterOptions options;
  options.max_connections_per_endpoint = 1;
  options.max_waiting_per_endpoint = 1;
  HttpStepAdapter adapter(options);
  Results busy, waiting;
  adapter.dispatch(make_call(server.url()), busy.callback());
  while (server.requests() == 0) std::this_thread::sleep_for(5ms);
  adapter.dispatch(make_call(server.url()), waiting.callback());
  std::this_thread::sleep_for(50ms);
  StepResult r = call_sync(adapter, make_call(server.url()));
  CHECK(r.outcome == Outcome::kTransient);
  CHECK_FALSE(r.sent);
  CHECK(r.error == "step \"reserve\": too many calls waiting for a connection to 127.0.0.1:" +
                       std::to_string(server.port()));
  CHECK(busy.first().outcome == Outcome::kOk);
  CHECK(waiting.first().outcome == Outcome::kOk);
  CHECK(server.requests() == 2);
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
  SUBCASE("a fresh connection dropped before the reply is not retried: unknown, it was sent") {
    TestServer server([](const SeenRequest&) {
      TestReply r = reply(200, "{}");
      r.drop = true;
      return r;
    });
    HttpStepAdapter adapter;
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    CHECK(r.error == "step \"reserve\": connection to 127.0.0.1:" + std::to_string(server.port()) +
                         " lost after the request was sent: end of stream");
    CHECK(server.requests() == 1);
    CHECK(adapter.stats().stale_retries == 0);
  }
  SUBCASE("the re-send cannot connect: unknown, since the first copy may have arrived") {
    TestServer* self = nullptr;
    TestServer server([&](const SeenRequest& req) {
      TestReply r = reply(200, "{}");
      if (req.index_on_connection == 2) {
        self->stop_accepting();
        r.drop = true;
      }
      return r;
    });
    self = &server;
    HttpStepAdapter adapter;
    REQUIRE(call_sync(adapter, make_call(server.url())).outcome == Outcome::kOk);
    StepResult r = call_sync(adapter, make_call(server.url()));
    CHECK(r.outcome == Outcome::kTimeout);
    CHECK(r.sent);
    const std::string where = "127.0.0.1:" + std::to_string(server.port());
    CHECK(r.error == "step \"reserve\": connection to " + where +
                         " lost after the request was sent: end of stream; sending it again failed: "
                         "cannot connect to " + where + ": Connection refused");
    CHECK(adapter.stats().stale_retries == 1);
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

TEST_CASE("malformed service URLs are refused as business failures, never sent") {
  HttpStepAdapter adapter;
  StepResult r = call_sync(adapter, make_call("https://127.0.0.1:1?x"));
  CHECK(r.outcome == Outcome::kFailed);
  CHECK_FALSE(r.sent);
  CHECK(r.error == "step \"reserve\": service \"seats\": service URL \"https://127.0.0.1:1?x\": "
                   "query strings and fragments are not allowed");
  SUBCASE("a URL with invalid UTF-8 is quoted as valid UTF-8") {
    r = call_sync(adapter, make_call("ftp://\xff\xfe/" + std::string(1000, 'x')));
    CHECK(r.outcome == Outcome::kFailed);
    CHECK_FALSE(r.sent);
    CHECK(is_valid_utf8(r.error));
    CHECK(r.error.size() <= kMaxServiceTextBytes);
    CHECK(r.error.starts_with("step \"reserve\": service \"seats\": service URL \"ftp://\xEF\xBF\xBD\xEF\xBF\xBD/"));
  }
}

TEST_CASE("an unknown HTTP method is a business failure, never sent") {
  TestServer server([](const SeenRequest&) { return reply(200, "{}"); });
  HttpStepAdapter adapter;
  StepCall c = make_call(server.url());
  c.http_method = "FROB";
  bool sending = false;
  c.on_sending = [&] { sending = true; };
  StepResult r = call_sync(adapter, std::move(c));
  CHECK(r.outcome == Outcome::kFailed);
  CHECK_FALSE(r.sent);
  CHECK(r.error == "step \"reserve\": unknown HTTP method \"FROB\"");
  CHECK_FALSE(sending);
  CHECK(server.requests() == 0);
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
  CHECK(r.sent);  // the request was written: it may have reached the service

  // After shutdown, dispatch answers at once on the calling thread.
  std::optional<StepResult> late;
  adapter.dispatch(make_call(server.url()), [&](StepResult res) { late = std::move(res); });
  REQUIRE(late.has_value());
  CHECK(late->error == "adapter shut down");
  CHECK_FALSE(late->sent);
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
