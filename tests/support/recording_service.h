// The booking's step services in one in-process HTTP server that records,
// for every request, who sent it and when, by the wall clock — the clock
// PostgreSQL stamps commits with — so a test can set what usher sent against
// what its log held at that moment, node by node.
//
// On 127.0.0.1 port 0, one I/O thread of its own. Operations, by path:
//   /hold, /hold-parking  → {holdId}         /release → {holdId, status}
//   /charge               → {paymentId}, or 422 when `amount` > 1000 (a decline)
//   /refund               → {paymentId, status}
//   /issue                → {ticketId}       /send    → {}
// Each answer is decided when the request arrives (the effect happens at
// once) and sent after a latency drawn from [min, max], as a real service
// works for a while; that keeps sagas in flight. A request whose
// Idempotency-Key was answered before gets the same answer again, recorded
// as a replay: nothing is done twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "support/cloexec_socket.h"

namespace usher::test {

class RecordingService {
 public:
  using WallClock = std::chrono::system_clock;

  // One request as it arrived.
  struct Call {
    std::string operation;  // "hold", "charge"… (the path without "/")
    std::string key;        // Idempotency-Key: {sagaId}:{step}:{action|compensate}
    std::string saga;       // X-Usher-Saga-Id
    std::string step;       // X-Usher-Step
    std::string node;       // X-Usher-Node, "" when absent
    int attempt = 0;        // X-Usher-Attempt
    WallClock::time_point at;  // when the whole request had been read
    unsigned status = 0;    // the answer decided for it
    bool replayed = false;  // the key was answered before: the same answer again
  };

  RecordingService(std::chrono::milliseconds min_latency, std::chrono::milliseconds max_latency)
      : min_(min_latency), max_(max_latency), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    set_cloexec(acceptor_.native_handle());
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  // Stops at once; answers still waiting are dropped. Destroy it after the
  // nodes that call it.
  ~RecordingService() {
    io_.stop();
    thread_.join();
  }
  RecordingService(const RecordingService&) = delete;
  RecordingService& operator=(const RecordingService&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Every request so far, in arrival order.
  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  using Json = nlohmann::json;
  static constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);

  struct Answer {
    unsigned status = 200;
    std::string body;
  };

  static int64_t amount_of(const Json& in) {
    const Json& a = in.value("amount", Json());
    if (a.is_number_integer()) return a.get<int64_t>();
    if (a.is_string()) return std::atoll(a.get<std::string>().c_str());
    return 0;
  }

  static Answer perform(const std::string& operation, const std::string& key, const std::string& body) {
    const Json in = Json::parse(body, nullptr, false);
    if (!in.is_object()) return {400, R"({"error":"not a JSON object"})"};
    if (operation == "hold" || operation == "hold-parking") return {200, Json{{"holdId", "h:" + key}}.dump()};
    if (operation == "release") return {200, Json{{"holdId", in.value("holdId", Json())}, {"status", "released"}}.dump()};
    if (operation == "charge") {
      if (amount_of(in) > 1000) return {422, R"({"error":"card declined"})"};
      return {200, Json{{"paymentId", "p:" + key}}.dump()};
    }
    if (operation == "refund") return {200, Json{{"paymentId", in.value("paymentId", Json())}, {"status", "refunded"}}.dump()};
    if (operation == "issue") return {200, Json{{"ticketId", "t:" + key}}.dump()};
    if (operation == "send") return {200, "{}"};
    return {404, R"({"error":"no such operation"})"};
  }

  // Records the request and decides its answer, under the lock, so the
  // record's order is the order answers were decided in.
  Answer record(Call call, const std::string& body, std::chrono::milliseconds& latency) {
    std::lock_guard lock(mu_);
    Answer a;
    auto done = answers_.find(call.key);
    if (!call.key.empty() && done != answers_.end()) {
      a = done->second;
      call.replayed = true;
    } else {
      a = perform(call.operation, call.key, body);
      // 5xx would be a retryable answer; perform() gives none, so every answer is final.
      if (!call.key.empty()) answers_[call.key] = a;
    }
    call.status = a.status;
    calls_.push_back(std::move(call));
    std::uniform_int_distribution<int64_t> pick(min_.count(), max_.count());
    latency = std::chrono::milliseconds(pick(rng_));
    return a;
  }

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await accept_cloexec(acceptor_);
      if (!socket) co_return;
      boost::asio::co_spawn(io_, session(std::move(*socket)), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> session(tcp::socket socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, kAwait);
      if (ec) break;
      const auto& req = parser.get();
      Call call;
      call.at = WallClock::now();
      const std::string target(req.target());
      call.operation = target.empty() ? target : target.substr(1);
      call.key = std::string(req["Idempotency-Key"]);
      call.saga = std::string(req["X-Usher-Saga-Id"]);
      call.step = std::string(req["X-Usher-Step"]);
      call.node = std::string(req["X-Usher-Node"]);
      call.attempt = std::atoi(std::string(req["X-Usher-Attempt"]).c_str());
      std::chrono::milliseconds latency{0};
      const Answer a = record(std::move(call), req.body(), latency);
      const bool keep_alive = req.keep_alive();
      if (latency.count() > 0) {
        boost::asio::steady_timer sleep(io_, latency);
        co_await sleep.async_wait(kAwait);
      }
      const std::string bytes = "HTTP/1.1 " + std::to_string(a.status) + (a.status == 200 ? " OK" : " Refused") +
                                "\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(a.body.size()) + "\r\n\r\n" + a.body;
      auto [wec, w] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes), kAwait);
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  const std::chrono::milliseconds min_, max_;
  mutable std::mutex mu_;  // guards answers_, calls_, rng_
  std::map<std::string, Answer> answers_;
  std::vector<Call> calls_;
  std::mt19937_64 rng_{20260501};
  // Declared last so they go first: the I/O context's end destroys the
  // sessions' frames while the members above still exist.
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace usher::test
