// The Beast server of the trigger API: a listener accepts, a session serves
// one connection, and every request is answered by ApiHandler, which never
// sees the socket.
//
// Limits, each with its default, and what a client sees past it:
//   max_header_bytes 16 KiB   431 and the connection is closed
//   max_body_bytes   1 MiB    413 and the connection is closed; a declared
//                              Content-Length is refused after the header,
//                              before any of the body is read (what arrives
//                              anyway is discarded for at most a second so
//                              the client can read the 413)
//   max_connections  1024     see "Fairness" below; past it with every
//                              connection busy: 503 and close, no request read
//   max_connections_per_address 512   the same, among one client address's
//                              connections
//   first_request_timeout 10 s a new connection's first request line and
//                              header must have arrived by then, else it is closed
//   idle_timeout     60 s     a keep-alive connection without a request is closed
//   read_timeout     30 s     time to receive one request once its first byte came
//   write_timeout    30 s     time to send one response
//   response deadline          ApiHandler::response_deadline() (?wait cap + 30 s): 503
//
// Fairness: a connection is "waiting" while no request of it is being
// handled or answered (before its first request, between requests, or while
// a request is still arriving), and "busy" otherwise. When a new connection
// finds the table full — max_connections in all, or max_connections_per_address
// from its own address — the connection that has been waiting longest (from
// that address, when it is the per-address cap) is closed to make room. An
// answer is never cut off that way; a waiting client loses only an idle
// keep-alive connection, which HTTP clients reopen, or a request still
// arriving after everyone else's. Only when every connection is busy is the
// newcomer refused (503). So idle sockets cannot lock anybody out, whoever
// holds them: the price of a slot is real work, which the engine's own
// back-pressure bounds. A request answered 401 also ends its connection, so
// a client without the token keeps no connection between requests.
//
// A streaming response (ApiHandler::Stream, the Server-Sent Events of the
// event feed) is written with chunked transfer coding, a piece per chunk,
// each within write_timeout; it holds its connection until the stream ends,
// the client goes away or the server stops (which ends streams at once).
//
// Threading: `io_threads` threads run one io_context. The acceptor and each
// session run on their own strand, so a session's state needs no lock. The
// handler answers from other threads (engine, worker pool); the answer is
// posted to the session's strand. Session bookkeeping for stop() sits under
// one mutex, touched once per connection open/close.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "http/api/api_handler.h"
#include "usher/status.h"

namespace usher::api {

struct ApiServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port; see ApiServer::port()
  unsigned io_threads = 1;
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 1 << 20;
  size_t max_connections = 1024;
  size_t max_connections_per_address = 512;
  Millis first_request_timeout{10'000};
  Millis idle_timeout{60'000};
  Millis read_timeout{30'000};
  Millis write_timeout{30'000};
};

class ApiServer {
 public:
  // Binds and starts serving. kInvalidArgument for a bad address,
  // kUnavailable when the port cannot be bound. `handler` must outlive the server.
  static Result<std::unique_ptr<ApiServer>> start(ApiHandler& handler, ApiServerOptions options);

  ~ApiServer();  // stop() with no grace if not stopped yet
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  uint16_t port() const { return local_endpoint().port(); }

  // Stops accepting, closes idle connections, lets requests in progress be
  // answered for up to `grace` (their connections close after the response),
  // then answers those still waiting for the engine with 503, closes
  // whatever is left and joins the I/O threads. Idempotent. An answer the
  // handler gives after this is dropped, so the handler may outlive the server.
  void stop(Millis grace = Millis{2'000});

  size_t connections() const;
  // Waiting connections closed so far to make room for new ones (Fairness).
  uint64_t evictions() const;

 private:
  class Impl;
  explicit ApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace usher::api
