// The network side of one example service: a listener coroutine that accepts
// and one session coroutine per connection (HTTP/1.1 keep-alive), which turn
// requests into ServiceRequest and StepService replies into responses.
//
// Threading: everything runs on the io_context passed in, which main() runs
// on one thread; StepService therefore needs no lock.
//
// Bounds: request body and header limits (413/431 then close), an idle
// timeout between requests, and a limit on how long a "hang" holds a
// connection when the client never gives up.
#pragma once

#include <chrono>
#include <cstddef>
#include <unordered_set>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "step_service.h"

namespace usher::examples {

struct ServerLimits {
  size_t body_limit = 64 << 10;
  size_t header_limit = 16 << 10;
  std::chrono::milliseconds idle_timeout{30'000};  // between requests on one connection
  std::chrono::milliseconds hang_limit{600'000};   // longest a hanging call holds its connection
};

class ServiceServer {
 public:
  // Binds and listens at once (throws boost::system::system_error when the
  // port is taken), so the caller can print the port before serving.
  ServiceServer(boost::asio::io_context& io, StepService& service,
                const boost::asio::ip::tcp::endpoint& at, ServerLimits limits);

  unsigned short port() const { return port_; }
  void start();
  // Graceful stop: no new connections; idle and hanging connections are
  // closed now; a request being answered gets its response, then its
  // connection is closed.
  void stop();
  // No connection open (after stop(): every response in progress was sent).
  bool idle() const { return sessions_.empty(); }

 private:
  struct Session {
    boost::beast::tcp_stream* stream;
    bool busy = false;  // between reading a request and writing its response
  };
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  StepService& service_;
  ServerLimits limits_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  bool stopping_ = false;
  std::unordered_set<Session*> sessions_;
};

}  // namespace usher::examples
