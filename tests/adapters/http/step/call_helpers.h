// Helpers shared by the HTTP client tests: a step call with every field set,
// a scripted test-server reply, a blocking wrapper
// around dispatch() with a bound on the wait (the collector for calls awaited
// later is support/step_results.h, shared with the Kafka tests).
#pragma once

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "http/step/http_step_adapter.h"
#include "test_server.h"
#include "support/dead_port.h"
#include "support/step_results.h"

namespace usher::test {

inline StepCall make_call(const std::string& url, const std::string& service = "seats",
                          const std::string& operation = "hold", const std::string& step = "reserve") {
  StepCall c;
  c.saga_id = "0190a1b2-0000-7000-8000-000000000001";
  c.workflow = "concert-booking";
  c.step = step;
  c.kind = CallKind::kAction;
  c.attempt = 2;
  c.service.name = service;
  c.service.transport = Transport::kHttp;
  c.service.url = url;
  c.operation = operation;
  c.body = Json{{"concertId", "C-7"}, {"seat", "A1"}};
  c.idempotency_key = c.saga_id + ":" + step + ":action";
  c.correlation_id = "corr-42";
  c.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  c.timeout = Millis(3'000);
  return c;
}

inline TestReply reply(unsigned status, std::string body,
                       std::vector<std::pair<std::string, std::string>> headers = {}) {
  TestReply r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

// Dispatches and waits for the result (at most 15 s, so a lost callback fails
// the test instead of hanging it).
inline StepResult call_sync(StepAdapter& adapter, StepCall call) {
  auto promise = std::make_shared<std::promise<StepResult>>();
  auto future = promise->get_future();
  adapter.dispatch(std::move(call), [promise](StepResult r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
  return future.get();
}

}  // namespace usher::test
