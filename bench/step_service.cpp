// usher-bench-service: the ticketing benchmark's step service (docs/performance.md)
// in C++, so the engine, not the service, is what a run measures.
//
//   usher-bench-service [--port 0] [--threads 2]
//
// Listens on 127.0.0.1 (port 0 picks one), prints `port=N` on stdout once it
// accepts, and serves HTTP/1.1 keep-alive until SIGTERM/SIGINT. Every POST is
// answered at once from ticketing_rules.h; GET /stats gives the call counts
// per path and POST /stats/reset zeroes them.
//
// Threads: `threads` threads run one io_context; each connection is one
// coroutine (read, answer, repeat), so connections never share state but the
// atomic counters.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "ticketing_rules.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using usher::bench::Path;

usher::bench::Counts g_counts;

http::response<http::string_body> handle(const http::request<http::string_body>& req) {
  http::response<http::string_body> res;
  res.version(11);
  res.keep_alive(req.keep_alive());
  res.set(http::field::content_type, "application/json");
  const std::string_view target = req.target();
  if (target == "/stats" && req.method() == http::verb::get) {
    res.result(http::status::ok);
    res.body() = g_counts.to_json();
  } else if (target == "/stats/reset" && req.method() == http::verb::post) {
    g_counts.reset();
    res.result(http::status::ok);
    res.body() = "{}";
  } else if (Path path; req.method() == http::verb::post && usher::bench::parse_path(target, path)) {
    auto body = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
    const nlohmann::json* saga_id = body.is_object() ? &body["sagaId"] : nullptr;
    const nlohmann::json* seat = body.is_object() ? &body["seat"] : nullptr;
    if (!saga_id || !saga_id->is_string() || !seat || !seat->is_number_integer()) {
      res.result(http::status::bad_request);
      res.body() = R"j({"error":"body must hold sagaId (string) and seat (integer)"})j";
    } else {
      g_counts.bump(path);
      auto a = usher::bench::answer(path, saga_id->get_ref<const std::string&>(), seat->get<int64_t>());
      res.result(static_cast<http::status>(a.status));
      res.body() = std::move(a.body);
    }
  } else {
    res.result(http::status::not_found);
    res.body() = R"({"error":"no such path"})";
  }
  res.prepare_payload();
  return res;
}

asio::awaitable<void> session(tcp::socket socket) {
  beast::flat_buffer buffer;
  socket.set_option(tcp::no_delay(true));
  for (;;) {
    http::request<http::string_body> req;
    auto [ec, n] = co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
    if (ec) break;  // closed by the client, or a malformed request
    auto res = handle(req);
    auto [wec, wn] = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. out of file descriptors for a moment
    }
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The ticketing benchmark's step service (docs/performance.md)."};
  unsigned short port = 0;
  unsigned threads = 2;
  app.add_option("--port", port, "port on 127.0.0.1; 0 picks one [0]");
  app.add_option("--threads", threads, "threads serving requests [2]")->check(CLI::Range(1u, 64u));
  CLI11_PARSE(app, argc, argv);

  asio::io_context io(static_cast<int>(threads));
  tcp::acceptor acceptor(io);
  try {
    tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
    acceptor.open(at.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(at);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    std::cerr << "usher-bench-service: cannot listen on 127.0.0.1:" << port << ": " << e.what() << "\n";
    return 1;
  }
  std::printf("port=%u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    beast::error_code ignored;
    acceptor.close(ignored);
    io.stop();
  });
  asio::co_spawn(io, listen(acceptor), asio::detached);
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}
