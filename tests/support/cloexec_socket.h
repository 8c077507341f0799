// Sockets a test's in-process server opens, with close-on-exec set as they
// are made (accept4, socket with SOCK_CLOEXEC): Asio leaves it unset, so a
// process the test spawns meanwhile (a `usher serve` node) would inherit
// the connection, and closing it in the test would then not end it — the
// peer would never see the reset a test means it to see.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace usher::test {

// For the listening socket itself, once, before any child is spawned.
inline void set_cloexec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

// The next connection on `acceptor`; nullopt once the acceptor is closed.
inline boost::asio::awaitable<std::optional<boost::asio::ip::tcp::socket>> accept_cloexec(
    boost::asio::ip::tcp::acceptor& acceptor) {
  using tcp = boost::asio::ip::tcp;
  acceptor.non_blocking(true);
  for (;;) {
    auto [ec] = co_await acceptor.async_wait(tcp::acceptor::wait_read,
                                             boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return std::nullopt;
    const int fd = ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) continue;
      co_return std::nullopt;
    }
    tcp::socket socket(acceptor.get_executor());
    socket.assign(tcp::v4(), fd);
    co_return std::optional<tcp::socket>(std::move(socket));
  }
}

// A TCP socket, not yet connected.
inline boost::asio::ip::tcp::socket open_cloexec(const boost::asio::any_io_executor& executor) {
  using tcp = boost::asio::ip::tcp;
  tcp::socket socket(executor);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) socket.assign(tcp::v4(), fd);
  return socket;
}

}  // namespace usher::test
