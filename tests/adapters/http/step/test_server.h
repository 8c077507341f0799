// A small Beast HTTP server for the adapter tests, on 127.0.0.1 port 0 with its
// own I/O thread. Each request goes to a handler that says what to answer and
// how (status, body, headers, a delay, never, closing or resetting the
// connection instead, or raw bytes that need not be a whole reply), and the
// server counts connections so tests can see reuse and the pool bound from
// the other side.
#pragma once

#include <atomic>
#include <cctype>
#include <future>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace usher::test {

struct TestReply {
  unsigned status = 200;
  std::string body = "{}";
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};
  bool hang = false;              // never answer (after `raw`, if set); wait for the client to close
  bool drop = false;              // close the connection instead of answering
  bool close_after = false;       // answer with Connection: close, then close
  bool reset = false;             // reset the connection (RST) instead of answering
  std::optional<std::string> raw;  // write these bytes instead of a reply, then close (or hang)
};

// What the server saw of one request.
struct SeenRequest {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // by lower-case name
  int connection = 0;        // 1-based number of the connection it came on
  int index_on_connection = 0;  // 1-based position on that connection
};

class TestServer {
 public:
  using Handler = std::function<TestReply(const SeenRequest&)>;

  explicit TestServer(Handler handler)
      : handler_(std::move(handler)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TestServer() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      for (auto* s : sockets_) s->close(ignored);
      stopped_ = true;
    });
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  unsigned short port() const { return port_; }

  int connections_accepted() const { return accepted_.load(); }
  int max_open() const { return max_open_.load(); }
  int requests() const { return requests_.load(); }
  std::vector<SeenRequest> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

  // Stops accepting: later connections are refused. From a handler (the
  // server's thread) it takes effect before the handler's reply is sent.
  void stop_accepting() {
    auto close = [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    };
    if (io_.get_executor().running_in_this_thread()) {
      close();
    } else {
      boost::asio::post(io_, close);
    }
  }

  // Closes every connection that is waiting for its next request, as a server
  // with a short keep-alive timeout does.
  // Waits until every open connection is idle first: the client may hold its
  // reply before the server's session has gone back to reading.
  void close_idle_connections() {
    for (int tries = 0; tries < 200; ++tries) {
      std::promise<bool> done;
      boost::asio::post(io_, [&] {
        if (idle_.size() != sockets_.size()) return done.set_value(false);
        boost::system::error_code ignored;
        for (auto* s : idle_) s->close(ignored);
        done.set_value(true);
      });
      if (done.get_future().get()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

 private:
  using tcp = boost::asio::ip::tcp;

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
      boost::asio::co_spawn(io_, session(std::move(socket), ++accepted_), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> session(tcp::socket socket, int number) {
    namespace http = boost::beast::http;
    constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);
    if (stopped_) co_return;
    tcp::socket* raw = &socket;
    sockets_.insert(raw);
    const int now_open = ++open_;
    int prev = max_open_.load();
    while (now_open > prev && !max_open_.compare_exchange_weak(prev, now_open)) {
    }
    boost::beast::flat_buffer buffer;
    bool abort = false;  // reset: close at once, no FIN first
    for (int index = 1;; ++index) {
      http::request<http::string_body> req;
      idle_.insert(raw);
      auto [ec, n] = co_await http::async_read(socket, buffer, req, kAwait);
      idle_.erase(raw);
      if (ec) break;
      SeenRequest seen{std::string(req.method_string()), std::string(req.target()), req.body(), {}, number, index};
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        seen.headers[name] = std::string(f.value());
      }
      {
        std::lock_guard lock(mu_);
        seen_.push_back(seen);
      }
      ++requests_;
      TestReply reply = handler_(seen);
      if (reply.delay.count() > 0) {
        boost::asio::steady_timer t(io_, reply.delay);
        co_await t.async_wait(kAwait);
      }
      if (reply.drop) break;
      if (reply.reset) {
        boost::system::error_code ignored;
        socket.set_option(boost::asio::socket_base::linger(true, 0), ignored);  // close() sends RST
        abort = true;
        break;
      }
      if (reply.raw) co_await boost::asio::async_write(socket, boost::asio::buffer(*reply.raw), kAwait);
      if (reply.hang) {
        char byte;
        co_await socket.async_read_some(boost::asio::buffer(&byte, 1), kAwait);
        break;
      }
      if (reply.raw) break;
      http::response<http::string_body> res{static_cast<http::status>(reply.status), 11};
      for (auto& [k, v] : reply.headers) res.set(k, v);
      res.body() = std::move(reply.body);
      res.keep_alive(!reply.close_after);
      res.prepare_payload();
      auto [wec, w] = co_await http::async_write(socket, res, kAwait);
      if (wec || reply.close_after) break;
    }
    boost::system::error_code ignored;
    if (!abort) socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    sockets_.erase(raw);
    --open_;
  }

  Handler handler_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  bool stopped_ = false;
  std::unordered_set<tcp::socket*> sockets_;  // I/O thread only
  std::unordered_set<tcp::socket*> idle_;     // I/O thread only
  std::atomic<int> accepted_{0};
  std::atomic<int> open_{0};
  std::atomic<int> max_open_{0};
  std::atomic<int> requests_{0};
  mutable std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

}  // namespace usher::test
