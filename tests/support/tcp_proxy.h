// A TCP proxy a test puts between one client and its server (a node and
// PostgreSQL) to cut the network between them at a moment of its choosing.
//
// Listens on 127.0.0.1 port 0 and forwards each connection to 127.0.0.1:
// `upstream`, bytes both ways as they come. cut() closes every connection it
// carries, both ends at once (the client sees a reset; the server sees its
// client gone, so a transaction left open is rolled back rather than holding
// its locks), and from then on new connections are
//   - kBlackhole: accepted and held without a byte forwarded either way, as
//     a partition looks from the client (a connect waits for the greeting);
//   - kRefuse: accepted and reset at once (a server that is down).
// heal() forwards new connections again and resets the held ones, so their
// clients try again.
//
// Threading: one I/O thread of its own runs every socket; cut() and heal()
// may be called from any thread and return once they took effect.
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <thread>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "support/cloexec_socket.h"

namespace usher::test {

class TcpProxy {
 public:
  enum class Partition { kBlackhole, kRefuse };

  explicit TcpProxy(uint16_t upstream)
      : upstream_(upstream), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    set_cloexec(acceptor_.native_handle());
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  // Closes everything at once; the clients see their connections reset.
  ~TcpProxy() {
    io_.stop();
    thread_.join();
    connections_.clear();  // their sockets go while the I/O context still exists
    held_.clear();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const { return port_; }

  void cut(Partition how = Partition::kBlackhole) {
    on_io([this, how] {
      partition_ = how;
      cut_ = true;
      for (auto& [id, c] : connections_) c->close();
      connections_.clear();
    });
  }

  void heal() {
    on_io([this] {
      cut_ = false;
      for (auto& [id, c] : held_) c->close();
      held_.clear();
    });
  }

  // Connections accepted so far (forwarded, held or refused).
  int accepted() {
    int n = 0;
    on_io([&] { n = accepted_; });
    return n;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  static constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);

  // One client connection and, when forwarded, its upstream connection.
  struct Link {
    explicit Link(tcp::socket c) : client(std::move(c)), server(open_cloexec(client.get_executor())) {}
    void close() {
      boost::system::error_code ignored;
      client.set_option(tcp::socket::linger(true, 0), ignored);  // a reset, not a clean end
      client.close(ignored);
      server.set_option(tcp::socket::linger(true, 0), ignored);
      server.close(ignored);
    }
    tcp::socket client;
    tcp::socket server;
  };

  template <class F>
  void on_io(F f) {
    std::promise<void> done;
    boost::asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await accept_cloexec(acceptor_);
      if (!socket) co_return;
      ++accepted_;
      auto link = std::make_shared<Link>(std::move(*socket));
      const uint64_t id = next_id_++;
      if (cut_ && partition_ == Partition::kRefuse) {
        link->close();
      } else if (cut_) {
        held_[id] = link;  // never read: the client's bytes wait in the kernel
      } else {
        connections_[id] = link;
        boost::asio::co_spawn(io_, forward(link, id), boost::asio::detached);
      }
    }
  }

  boost::asio::awaitable<void> forward(std::shared_ptr<Link> link, uint64_t id) {
    auto [ec] = co_await link->server.async_connect({boost::asio::ip::make_address("127.0.0.1"), upstream_}, kAwait);
    if (ec) {
      link->close();
      connections_.erase(id);
      co_return;
    }
    boost::asio::co_spawn(io_, pump(link, link->client, link->server, id), boost::asio::detached);
    co_await pump(link, link->server, link->client, id);
  }

  // Copies from `from` to `to` until either side ends; then ends both.
  // `keep` holds the sockets for as long as this runs.
  boost::asio::awaitable<void> pump(std::shared_ptr<Link> keep, tcp::socket& from, tcp::socket& to, uint64_t id) {
    char buffer[16384];
    for (;;) {
      auto [rec, n] = co_await from.async_read_some(boost::asio::buffer(buffer), kAwait);
      if (rec) break;
      auto [wec, w] = co_await boost::asio::async_write(to, boost::asio::buffer(buffer, n), kAwait);
      if (wec) break;
    }
    boost::system::error_code ignored;
    from.close(ignored);
    to.close(ignored);
    connections_.erase(id);
    keep.reset();
  }

  const uint16_t upstream_;
  // I/O thread only:
  bool cut_ = false;
  Partition partition_ = Partition::kBlackhole;
  int accepted_ = 0;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Link>> connections_;  // forwarded
  std::map<uint64_t, std::shared_ptr<Link>> held_;         // accepted while cut (kBlackhole)
  // Declared last so they go first: the I/O context's end destroys the
  // coroutines' frames while the members above still exist.
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace usher::test
