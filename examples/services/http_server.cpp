#include "http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace usher::examples {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

std::string header(const http::request<http::string_body>& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}
}  // namespace

ServiceServer::ServiceServer(asio::io_context& io, StepService& service, const tcp::endpoint& at,
                             ServerLimits limits)
    : io_(io), service_(service), limits_(limits), acceptor_(io) {
  acceptor_.open(at.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(at);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  port_ = acceptor_.local_endpoint().port();
}

void ServiceServer::start() { asio::co_spawn(io_, accept_loop(), asio::detached); }

void ServiceServer::stop() {
  stopping_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  for (Session* s : sessions_)
    if (!s->busy) s->stream->socket().close(ignored);
}

asio::awaitable<void> ServiceServer::accept_loop() {
  while (!stopping_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kAwait);
    if (ec) {
      if (stopping_ || ec == asio::error::operation_aborted) co_return;
      continue;  // e.g. too many open files: keep serving the connections we have
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ServiceServer::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  Session session{&stream};
  sessions_.insert(&session);
  struct Unregister {
    std::unordered_set<Session*>& set;
    Session* s;
    ~Unregister() { set.erase(s); }
  } unregister{sessions_, &session};

  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits_.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(limits_.header_limit));
    stream.expires_after(limits_.idle_timeout);
    auto [rec, read] = co_await http::async_read(stream, buffer, parser, kAwait);
    if (rec == http::error::body_limit || rec == http::error::header_limit) {
      http::response<http::string_body> res{
          rec == http::error::body_limit ? http::status::payload_too_large
                                         : http::status::request_header_fields_too_large, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = Json{{"error", rec.message()}}.dump();
      res.keep_alive(false);
      res.prepare_payload();
      stream.expires_after(std::chrono::seconds(5));
      co_await http::async_write(stream, res, kAwait);
      break;
    }
    if (rec) break;  // closed by the client, idle timeout, stop, or garbage

    session.busy = true;
    const auto& req = parser.get();
    ServiceRequest sreq{std::string(req.method_string()), std::string(req.target()), req.body(),
                        header(req, "Idempotency-Key"), header(req, "X-Usher-Saga-Id"),
                        header(req, "X-Usher-Step"), header(req, "X-Usher-Attempt")};
    ServiceReply reply = service_.handle(sreq);

    if (reply.hang) {
      // Hold the request unanswered until the client closes (its timeout),
      // the hang limit, or stop(): one read that only an end can complete.
      session.busy = false;
      stream.expires_after(limits_.hang_limit);
      char byte;
      co_await stream.async_read_some(asio::buffer(&byte, 1), kAwait);
      break;
    }

    if (reply.delay.count() > 0) {
      asio::steady_timer working(stream.get_executor(), reply.delay);
      co_await working.async_wait(kAwait);
    }

    http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
    res.set(http::field::server, "usher-example-services");
    res.set(http::field::content_type, "application/json");
    res.body() = reply.body.dump();
    res.keep_alive(req.keep_alive() && !stopping_);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(30));
    auto [wec, written] = co_await http::async_write(stream, res, kAwait);
    session.busy = false;
    if (wec || !res.keep_alive()) break;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

}  // namespace usher::examples
