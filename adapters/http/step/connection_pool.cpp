#include "http/step/connection_pool.h"

#include <poll.h>

#include <algorithm>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/step/tls_client.h"

namespace usher::http_step {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// True when an idle connection shows no sign of having been closed: nothing to
// read (a FIN or stray bytes would be; for TLS, a close_notify or any record
// too, whether still in the socket or already taken into the TLS stream's
// buffers) and no hang-up. One poll() with a zero timeout, far cheaper than a
// reconnect or a failed attempt.
bool looks_alive(Connection& c) {
  auto& socket = c.tcp().socket();
  if (!socket.is_open()) return false;
  if (TlsStream* tls = c.tls(); tls && has_unread_bytes(tls->native_handle())) return false;
  pollfd p{socket.native_handle(), POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) == 0;
}

// Closing the socket ends a TLS connection too: no close_notify is sent or
// waited for, since nothing more is read from it and the service learns
// enough from the FIN.
void close_socket(Connection& c) {
  error_code ignored;
  c.tcp().socket().close(ignored);
}

std::variant<boost::beast::tcp_stream, TlsStream> make_stream(const Strand& strand, asio::ssl::context* tls) {
  if (tls == nullptr) return std::variant<boost::beast::tcp_stream, TlsStream>(std::in_place_index<0>, strand);
  return std::variant<boost::beast::tcp_stream, TlsStream>(std::in_place_index<1>, strand, *tls);
}

}  // namespace

Connection::Connection(const Strand& strand, asio::ssl::context* tls) : stream(make_stream(strand, tls)) {}

boost::beast::tcp_stream& Connection::tcp() {
  if (TlsStream* t = tls()) return t->next_layer();
  return std::get<boost::beast::tcp_stream>(stream);
}

ConnectionPool::ConnectionPool(const Strand& strand, ServiceUrl url, PoolLimits limits,
                               std::shared_ptr<asio::ssl::context> tls)
    : strand_(strand), url_(std::move(url)), limits_(limits), host_header_(url_.host_header()), tls_(std::move(tls)) {
  if (url_.host_is_ip)  // an IP literal needs no DNS
    addresses_.emplace_back(asio::ip::make_address(url_.host), static_cast<unsigned short>(std::stoul(url_.port)));
}

asio::awaitable<ConnectionPool::Acquire> ConnectionPool::acquire(ConnectionPtr& out) {
  if (closed_) co_return Acquire::kStopped;
  while (!idle_.empty()) {
    ConnectionPtr c = std::move(idle_.back());
    idle_.pop_back();
    if (SteadyClock::now() - c->idle_since <= limits_.max_idle && looks_alive(*c)) {
      busy_.insert(c.get());
      out = std::move(c);
      co_return Acquire::kGot;
    }
    close_socket(*c);
    --open_;
  }
  if (open_ < limits_.max_connections) {
    ++open_;
    out = make_connection();
    busy_.insert(out.get());
    co_return Acquire::kGot;
  }
  if (waiters_.size() >= limits_.max_waiting) co_return Acquire::kQueueFull;
  Waiter w(strand_);
  waiters_.push_back(&w);
  co_await w.timer.async_wait(kAwait);
  if (w.conn) {  // handed over by release(); it is already counted in `open_`
    busy_.insert(w.conn.get());
    out = std::move(w.conn);
    co_return Acquire::kGot;
  }
  std::erase(waiters_, &w);  // cancelled by close(), which cleared the queue
  co_return Acquire::kStopped;
}

ConnectionPtr ConnectionPool::make_connection() const { return std::make_unique<Connection>(strand_, tls_.get()); }

void ConnectionPool::hand_over(ConnectionPtr c) {
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->conn = std::move(c);
  w->timer.cancel();
}

void ConnectionPool::release(ConnectionPtr c, bool reusable) {
  busy_.erase(c.get());
  if (reusable && !closed_) {
    if (!waiters_.empty()) return hand_over(std::move(c));
    c->idle_since = SteadyClock::now();
    idle_.push_back(std::move(c));
    return;
  }
  close_socket(*c);
  c.reset();
  --open_;
  if (!waiters_.empty() && !closed_) {
    ++open_;
    hand_over(make_connection());
  }
}

void ConnectionPool::replace(ConnectionPtr& c) {
  busy_.erase(c.get());
  close_socket(*c);
  c = make_connection();
  busy_.insert(c.get());
}

asio::awaitable<std::string> ConnectionPool::resolve(SteadyClock::time_point deadline) {
  using namespace asio::experimental::awaitable_operators;
  tcp::resolver resolver(strand_);
  asio::steady_timer timer(strand_);
  timer.expires_at(deadline);
  resolving_.insert(&resolver);
  auto r = co_await (resolver.async_resolve(url_.host, url_.port, kAwait) || timer.async_wait(kAwait));
  resolving_.erase(&resolver);
  if (r.index() == 1) co_return "cannot resolve \"" + url_.host + "\" in time";
  auto& [ec, results] = std::get<0>(r);
  if (ec) co_return "cannot resolve \"" + url_.host + "\": " + ec.message();
  if (addresses_.empty())
    for (const auto& entry : results) addresses_.push_back(entry.endpoint());
  co_return addresses_.empty() ? "no address for \"" + url_.host + "\"" : "";
}

void ConnectionPool::close() {
  closed_ = true;
  for (auto& c : idle_) close_socket(*c);
  open_ -= idle_.size();
  idle_.clear();
  for (Connection* c : busy_) close_socket(*c);
  for (tcp::resolver* r : resolving_) r->cancel();
  for (Waiter* w : waiters_) w->timer.cancel();
  waiters_.clear();
}

}  // namespace usher::http_step
