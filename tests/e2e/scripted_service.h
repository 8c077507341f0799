// A step service that misbehaves on cue, for the end-to-end tests of what
// usher does with the answers a real service can give (docs/semantics.md).
//
// In process, on 127.0.0.1 port 0, with its own I/O thread. Each test scripts,
// per operation (the request path, "/hold"), a list of behaviours consumed one
// per request, the last one repeating:
//   reply      status + raw body bytes (any bytes: not JSON, Latin-1, cut UTF-8,
//              NUL, ESC), optionally after a delay;
//   hang       read the request and never answer, until usher gives up on the
//              attempt and closes the connection;
//   reset      read the request, then reset the connection without a word;
//   cut_off    a 200 status line and headers promising 100 body bytes, then
//              10 bytes and close.
// A path with no script is answered 200 `{}`.
//
// Every request is recorded with when it arrived and when its answer was sent
// (steady clock), so tests can say what usher sent, how often and in what
// order. Optionally at most `max_concurrent` requests are served at a time;
// the others wait, in arrival order, after being read (a slow service with a
// bounded worker pool).
//
// The responses are written as raw bytes, not through Beast's serializer, so
// that nothing about them is tidied up on the way out.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
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

namespace usher::e2e {

// What the service does with one request.
struct Behaviour {
  enum class Kind { kReply, kHang, kReset, kCutOff };
  Kind kind = Kind::kReply;
  unsigned status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  std::chrono::milliseconds delay{0};  // before the answer (kReply, kCutOff)

  static Behaviour reply(unsigned status, std::string body, std::string content_type = "application/json") {
    return {Kind::kReply, status, std::move(body), std::move(content_type), {}};
  }
  static Behaviour hang() { return {Kind::kHang, 0, "", "", {}}; }
  static Behaviour reset() { return {Kind::kReset, 0, "", "", {}}; }
  static Behaviour cut_off() { return {Kind::kCutOff, 200, "", "application/json", {}}; }
  // The same answer, `d` later.
  Behaviour after(std::chrono::milliseconds d) const {
    Behaviour b = *this;
    b.delay = d;
    return b;
  }
};

// One request as the service saw it.
struct Received {
  std::string method;
  std::string path;  // the request target, "/hold"
  std::string idempotency_key;
  std::string saga_id;  // X-Usher-Saga-Id
  std::string step;     // X-Usher-Step
  int attempt = 0;      // X-Usher-Attempt, 0 when absent
  std::string body;
  std::chrono::steady_clock::time_point received;
  std::optional<std::chrono::steady_clock::time_point> answered;  // when the answer began to leave
  std::string answer;  // "200", "409"… or "hung", "reset", "cut"; " undelivered" added when the write failed
  int connection = 0;  // 1-based number of the connection it came on
};

class ScriptedService {
 public:
  explicit ScriptedService(size_t max_concurrent = 0)
      : max_concurrent_(max_concurrent), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  // Stops at once: connections still open (a hang, a sleep) are dropped with
  // the I/O context. Destroy it after the `usher serve` that calls it.
  ~ScriptedService() {
    io_.stop();
    thread_.join();
  }
  ScriptedService(const ScriptedService&) = delete;
  ScriptedService& operator=(const ScriptedService&) = delete;

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // What the next requests to `path` get, one each; the last one repeats.
  void script(const std::string& path, std::vector<Behaviour> behaviours) {
    std::lock_guard lock(mu_);
    scripts_[path] = {std::move(behaviours), 0};
  }

  // Every request so far, in arrival order; with a path, only those.
  std::vector<Received> requests(const std::string& path = "") const {
    std::lock_guard lock(mu_);
    std::vector<Received> out;
    for (const Received& r : log_)
      if (path.empty() || r.path == path) out.push_back(r);
    return out;
  }

  size_t count(const std::string& path) const { return requests(path).size(); }

 private:
  using tcp = boost::asio::ip::tcp;
  using Clock = std::chrono::steady_clock;
  static constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);

  struct Script {
    std::vector<Behaviour> behaviours;
    size_t next = 0;
  };

  Behaviour next_behaviour(const std::string& path) {
    std::lock_guard lock(mu_);
    auto it = scripts_.find(path);
    if (it == scripts_.end() || it->second.behaviours.empty()) return Behaviour::reply(200, "{}");
    Script& s = it->second;
    const Behaviour& b = s.behaviours[std::min(s.next, s.behaviours.size() - 1)];
    ++s.next;
    return b;
  }

  size_t record(Received r) {
    std::lock_guard lock(mu_);
    log_.push_back(std::move(r));
    return log_.size() - 1;
  }

  // Records the answer just before it is written, so that `answered` is never
  // later than the moment usher could first see it.
  void answer(size_t index, std::string answer, bool sends_bytes) {
    std::lock_guard lock(mu_);
    log_[index].answer = std::move(answer);
    if (sends_bytes) log_[index].answered = Clock::now();
  }

  void undelivered(size_t index) {
    std::lock_guard lock(mu_);
    log_[index].answer += " undelivered";
  }

  static const char* reason(unsigned status) {
    switch (status) {
      case 200: return "OK";
      case 201: return "Created";
      case 204: return "No Content";
      case 400: return "Bad Request";
      case 404: return "Not Found";
      case 409: return "Conflict";
      case 422: return "Unprocessable Content";
      case 429: return "Too Many Requests";
      case 500: return "Internal Server Error";
      case 503: return "Service Unavailable";
      default: return "Status";
    }
  }

  static std::string head(unsigned status, const std::string& content_type, size_t content_length) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    if (!content_type.empty()) h += "Content-Type: " + content_type + "\r\n";
    h += "Content-Length: " + std::to_string(content_length) + "\r\n\r\n";
    return h;
  }

  // The bounded worker pool: single I/O thread, so no lock. A waiter is woken
  // by cancelling its timer; the slot passes to it directly.
  boost::asio::awaitable<void> enter() {
    if (max_concurrent_ == 0) co_return;
    if (busy_ < max_concurrent_) {
      ++busy_;
      co_return;
    }
    boost::asio::steady_timer wake(io_, Clock::time_point::max());
    waiting_.push_back(&wake);
    co_await wake.async_wait(kAwait);
  }

  void leave() {
    if (max_concurrent_ == 0) return;
    if (waiting_.empty()) {
      --busy_;
      return;
    }
    boost::asio::steady_timer* next = waiting_.front();
    waiting_.pop_front();
    next->cancel();
  }

  boost::asio::awaitable<void> accept_loop() {
    for (int number = 1;; ++number) {
      auto [ec, socket] = co_await acceptor_.async_accept(kAwait);
      if (ec) co_return;
      boost::asio::co_spawn(io_, session(std::move(socket), number), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> session(tcp::socket socket, int number) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(16 << 20);
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, kAwait);
      if (ec) break;
      const auto& req = parser.get();
      Received r;
      r.method = std::string(req.method_string());
      r.path = std::string(req.target());
      r.idempotency_key = std::string(req["Idempotency-Key"]);
      r.saga_id = std::string(req["X-Usher-Saga-Id"]);
      r.step = std::string(req["X-Usher-Step"]);
      const std::string attempt(req["X-Usher-Attempt"]);
      r.attempt = attempt.empty() ? 0 : std::atoi(attempt.c_str());
      r.body = req.body();
      r.received = Clock::now();
      r.connection = number;
      const size_t index = record(std::move(r));
      const bool keep_alive = req.keep_alive();

      co_await enter();
      const Behaviour b = next_behaviour(std::string(req.target()));
      if (b.delay.count() > 0) {
        boost::asio::steady_timer sleep(io_, b.delay);
        co_await sleep.async_wait(kAwait);
      }
      bool open = keep_alive;
      switch (b.kind) {
        case Behaviour::Kind::kReply: {
          std::string bytes = head(b.status, b.content_type, b.body.size()) + b.body;
          answer(index, std::to_string(b.status), true);
          auto [wec, w] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes), kAwait);
          if (wec) undelivered(index);
          open = open && !wec;
          break;
        }
        case Behaviour::Kind::kHang: {
          answer(index, "hung", false);
          leave();  // a hung call holds no worker
          char byte;
          for (;;) {  // until usher closes the connection
            auto [rec, got] = co_await socket.async_read_some(boost::asio::buffer(&byte, 1), kAwait);
            if (rec) break;
          }
          co_return;
        }
        case Behaviour::Kind::kReset: {
          answer(index, "reset", false);
          leave();
          boost::system::error_code ignored;
          socket.set_option(tcp::socket::linger(true, 0), ignored);  // close with RST, not FIN
          socket.close(ignored);
          co_return;
        }
        case Behaviour::Kind::kCutOff: {
          std::string bytes = head(200, b.content_type, 100) + "{\"holdId\":";  // 10 of the 100 promised
          answer(index, "cut", true);
          auto [wec, w] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes), kAwait);
          if (wec) undelivered(index);
          open = false;
          break;
        }
      }
      leave();
      if (!open) break;
    }
    boost::system::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  const size_t max_concurrent_;
  size_t busy_ = 0;                                   // I/O thread only
  std::deque<boost::asio::steady_timer*> waiting_;    // I/O thread only
  mutable std::mutex mu_;                             // guards scripts_ and log_
  std::map<std::string, Script> scripts_;
  std::vector<Received> log_;
  // Declared last so they go first: the I/O context's end destroys the
  // sessions' frames while the members above still exist.
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace usher::e2e
