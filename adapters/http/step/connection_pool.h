// The HTTP step adapter's keep-alive connections to one host:port, and the
// calls waiting for one (how an attempt uses them: http_step_adapter.cpp).
//
// A call takes the most recently used idle connection that is still alive
// (newer than max_idle, a poll() shows no FIN or stray bytes, and for TLS no
// record has arrived that no read consumed), else opens
// a new one while fewer than max_connections are open, else waits in arrival
// order until one is released or the pool is closed. Waiting has no deadline
// of its own: every connection it waits for belongs to an attempt that has
// one. Past max_waiting waiters a call is refused at once. A released
// connection goes to the first waiter, else onto the idle stack, when its
// reply allowed keep-alive; else it is closed and its slot goes to the first
// waiter as a new, unconnected connection.
//
// An https:// pool's connections are TLS streams over the same TCP streams,
// all made from the one client context of the service's `tls:` settings
// (tls_client.h); the pool is per scheme, host:port and those settings.
//
// Threading: every member function runs on strand(), where all the pool's
// state lives; nothing is locked.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "http/step/service_url.h"
#include "usher/definition.h"

namespace usher::http_step {

using SteadyClock = std::chrono::steady_clock;
using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// One keep-alive connection. Owned by the pool while idle and by the call
// using it while busy; touched only on its pool's strand.
struct Connection {
  // A plain connection when `tls` is null, else a TLS one made from it.
  Connection(const Strand& strand, boost::asio::ssl::context* tls);
  std::variant<boost::beast::tcp_stream, TlsStream> stream;
  // The TCP stream under it, for connecting, deadlines and closing.
  boost::beast::tcp_stream& tcp();
  TlsStream* tls() { return std::get_if<TlsStream>(&stream); }
  boost::beast::flat_buffer buffer;  // reused across replies: no allocation per call once warm
  bool used = false;                 // carried a request before: may have gone stale while idle
  SteadyClock::time_point idle_since{};
};
using ConnectionPtr = std::unique_ptr<Connection>;

struct PoolLimits {
  size_t max_connections = 64;  // idle + busy + handed to a waiter + connecting
  size_t max_waiting = 10'000;  // calls queued for a connection
  Millis max_idle{30'000};      // an idle connection older than this is closed, not reused
};

class ConnectionPool {
 public:
  // `tls` is the client context of an https:// service, null for http://.
  ConnectionPool(const Strand& strand, ServiceUrl url, PoolLimits limits,
                 std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  const Strand& strand() const { return strand_; }
  const ServiceUrl& url() const { return url_; }
  const std::string& host_header() const { return host_header_; }

  enum class Acquire { kGot, kQueueFull, kStopped };
  // A connection for one call, waiting as long as it takes: only a full
  // queue or close() end the wait without one. A connection got is busy until
  // it is given back through release().
  boost::asio::awaitable<Acquire> acquire(ConnectionPtr& out);

  // Gives a busy connection back; `reusable` when its reply allowed keep-alive
  // and left no bytes behind.
  void release(ConnectionPtr c, bool reusable);

  // Closes a busy connection that turned out dead and puts a new, unconnected
  // one in its slot (for the one re-send of a stale connection).
  void replace(ConnectionPtr& c);

  // The addresses to connect to: resolved once, by the first resolve() that
  // succeeds (an IP literal needs none).
  const std::vector<boost::asio::ip::tcp::endpoint>& addresses() const { return addresses_; }

  // Resolves the host name, bounded by `deadline`. Calls that start together
  // before the first answer may each resolve; after that the addresses are
  // kept for the pool's life. Returns an error text, or "" once addresses()
  // is not empty.
  boost::asio::awaitable<std::string> resolve(SteadyClock::time_point deadline);

  // Shutdown: closes every connection, cancels resolving, and wakes every
  // waiter (its acquire() answers kStopped). Later acquire() calls answer
  // kStopped as well.
  void close();

 private:
  // A call waiting for a connection. Lives in the waiting coroutine's frame;
  // the queue points at it. release() hands a connection over by setting
  // `conn` and cancelling the timer, close() by cancelling it alone. The
  // timer never expires by itself: waiting has no deadline.
  struct Waiter {
    explicit Waiter(const Strand& strand) : timer(strand) { timer.expires_at(SteadyClock::time_point::max()); }
    boost::asio::steady_timer timer;
    ConnectionPtr conn;
  };

  // Hands `c` to the first waiter.
  void hand_over(ConnectionPtr c);
  // A new, unconnected connection of this pool's kind.
  ConnectionPtr make_connection() const;

  Strand strand_;
  const ServiceUrl url_;
  const PoolLimits limits_;
  const std::string host_header_;
  const std::shared_ptr<boost::asio::ssl::context> tls_;
  std::vector<boost::asio::ip::tcp::endpoint> addresses_;
  std::vector<ConnectionPtr> idle_;       // a stack: the most recently used is the warmest
  std::unordered_set<Connection*> busy_;  // so close() can close them
  std::unordered_set<boost::asio::ip::tcp::resolver*> resolving_;
  std::deque<Waiter*> waiters_;
  size_t open_ = 0;  // idle + busy + handed to a waiter + connecting
  bool closed_ = false;
};

}  // namespace usher::http_step
