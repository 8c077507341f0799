// An HTTP step service for the "any node answers" tests whose answer to each
// operation the test switches while sagas run: answer at once, answer after a
// delay (a call held in flight while the test acts on another node), or
// refuse with a 422 (a business failure, so a compensation refused this way
// makes its saga `stuck`). Every request is recorded with the node that sent
// it (X-Usher-Node) and when it arrived, by the wall clock PostgreSQL stamps
// commits with, so a test can say which node sent what after a saga moved.
//
// On 127.0.0.1 port 0, one I/O thread of its own; the operation is the
// request path without "/". A 200 answers {"ref": KEY} (KEY the request's
// Idempotency-Key), which steps may read as their output.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
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

namespace usher::any_node {

class SwitchService {
 public:
  using WallClock = std::chrono::system_clock;

  // What an operation answers now.
  struct Mode {
    unsigned status = 200;
    std::chrono::milliseconds delay{0};
  };
  static Mode ok() { return {}; }
  static Mode slow(std::chrono::milliseconds d) { return {200, d}; }
  static Mode refuse() { return {422, {}}; }

  struct Call {
    std::string operation, key, saga, step, node;  // node: X-Usher-Node, "" when absent
    int attempt = 0;
    WallClock::time_point at;  // when the request had been read
    unsigned status = 0;       // the answer decided for it
  };

  SwitchService() : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    usher::test::set_cloexec(acceptor_.native_handle());
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  // Stops at once; answers still held are dropped. Destroy it after the nodes.
  ~SwitchService() {
    io_.stop();
    thread_.join();
  }
  SwitchService(const SwitchService&) = delete;
  SwitchService& operator=(const SwitchService&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // From now on, requests for `operation` get `mode` (those already read keep theirs).
  void set(const std::string& operation, Mode mode) {
    std::lock_guard lock(mu_);
    modes_[operation] = mode;
  }

  // Every request so far, in arrival order; with an operation, only those.
  std::vector<Call> calls(const std::string& operation = "") const {
    std::lock_guard lock(mu_);
    std::vector<Call> out;
    for (const Call& c : calls_)
      if (operation.empty() || c.operation == operation) out.push_back(c);
    return out;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  static constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);

  Mode record(Call call) {
    std::lock_guard lock(mu_);
    auto it = modes_.find(call.operation);
    const Mode mode = it == modes_.end() ? Mode{} : it->second;
    call.status = mode.status;
    calls_.push_back(std::move(call));
    return mode;
  }

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await usher::test::accept_cloexec(acceptor_);
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
      const std::string key = call.key;
      const Mode mode = record(std::move(call));
      const bool keep_alive = req.keep_alive();
      if (mode.delay.count() > 0) {
        boost::asio::steady_timer sleep(io_, mode.delay);
        co_await sleep.async_wait(kAwait);
      }
      const std::string body = mode.status == 200 ? nlohmann::json{{"ref", key}}.dump() : R"({"error":"refused"})";
      const std::string bytes = "HTTP/1.1 " + std::to_string(mode.status) + (mode.status == 200 ? " OK" : " Refused") +
                                "\r\nContent-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
      auto [wec, w] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes), kAwait);
      if (wec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  mutable std::mutex mu_;  // guards modes_, calls_
  std::map<std::string, Mode> modes_;
  std::vector<Call> calls_;
  // Declared last so they go first: the I/O context's end destroys the
  // sessions' frames while the members above still exist.
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace usher::any_node
