// A port on 127.0.0.1 where nothing listens, for "connection refused" tests.
#pragma once

#include <cstdint>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace usher::test {

// Bound once to learn a free port, then let go: a connect to it is refused.
inline uint16_t dead_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace usher::test
