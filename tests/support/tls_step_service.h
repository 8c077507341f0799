// A step service that speaks HTTPS, for the TLS tests: on 127.0.0.1 port 0
// with an I/O thread of its own, it presents the certificate it is given
// and, when given a client CA, requires a client certificate signed by it.
// Every request is answered 200 with {"served": target, "n": count}, over
// keep-alive connections. It records what a test needs to see from the
// service's side: connections, completed and failed handshakes, the server
// name (SNI) each handshake asked for, and the requests that arrived.
//
// After a failed handshake it stops writing and reads until the client
// closes (at most 2 s) before closing: closing at once, with the client's
// bytes unread, would send a reset that could overtake its alert, and the
// client should see why it was refused.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

#include "support/cloexec_socket.h"
#include "support/test_certificates.h"

namespace usher::test {

class TlsStepService {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::string body;
    std::string idempotency_key;
    int connection = 0;  // 1-based number of the connection it came on
  };

  // `client_ca`: when set, a client certificate signed by it is required.
  explicit TlsStepService(const CertAndKey& server, std::optional<std::string> client_ca = std::nullopt)
      : context_(boost::asio::ssl::context::tls_server), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    context_.use_certificate_chain_file(server.cert);
    context_.use_private_key_file(server.key, boost::asio::ssl::context::pem);
    if (client_ca) {
      context_.load_verify_file(*client_ca);
      context_.set_verify_mode(boost::asio::ssl::verify_peer | boost::asio::ssl::verify_fail_if_no_peer_cert);
    }
    set_cloexec(acceptor_.native_handle());
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(io_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TlsStepService() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      io_.stop();
    });
    thread_.join();
  }

  TlsStepService(const TlsStepService&) = delete;
  TlsStepService& operator=(const TlsStepService&) = delete;

  // "https://127.0.0.1:PORT", or with another host name that resolves here.
  std::string url(const std::string& host = "127.0.0.1") const {
    return "https://" + host + ":" + std::to_string(port_);
  }
  unsigned short port() const { return port_; }

  // Closes a connection that has waited this long for its next request, as
  // a server with a short keep-alive timeout does (by default 30 s).
  void close_idle_after(std::chrono::milliseconds d) { idle_ms_ = d.count(); }

  int connections() const { return connections_.load(); }
  int handshakes() const { return handshakes_.load(); }
  int failed_handshakes() const { return failed_handshakes_.load(); }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // The server name each completed handshake asked for ("" for none).
  std::vector<std::string> server_names() const {
    std::lock_guard lock(mu_);
    return server_names_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  using Stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await accept_cloexec(acceptor_);
      if (!socket) co_return;
      boost::asio::co_spawn(io_, session(std::move(*socket), ++connections_), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> session(tcp::socket socket, int number) {
    namespace http = boost::beast::http;
    constexpr auto kAwait = boost::asio::as_tuple(boost::asio::use_awaitable);
    Stream stream(boost::beast::tcp_stream(std::move(socket)), context_);
    stream.next_layer().expires_after(std::chrono::seconds(10));
    auto [hec] = co_await stream.async_handshake(boost::asio::ssl::stream_base::server, kAwait);
    if (hec) {
      ++failed_handshakes_;
      co_await drain(stream.next_layer());
      co_return;
    }
    ++handshakes_;
    {
      const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
      std::lock_guard lock(mu_);
      server_names_.push_back(sni ? sni : "");
    }
    boost::beast::flat_buffer buffer;
    for (;;) {
      stream.next_layer().expires_after(std::chrono::milliseconds(idle_ms_.load()));
      http::request<http::string_body> req;
      auto [rec, n] = co_await http::async_read(stream, buffer, req, kAwait);
      if (rec) co_return;
      int count = 0;
      {
        std::lock_guard lock(mu_);
        requests_.push_back({std::string(req.method_string()), std::string(req.target()), req.body(),
                             std::string(req["Idempotency-Key"]), number});
        count = static_cast<int>(requests_.size());
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(req.keep_alive());
      res.body() = nlohmann::json{{"served", std::string(req.target())}, {"n", count}}.dump();
      res.prepare_payload();
      auto [wec, w] = co_await http::async_write(stream, res, kAwait);
      if (wec || !req.keep_alive()) co_return;
    }
  }

  static boost::asio::awaitable<void> drain(boost::beast::tcp_stream& tcp) {
    boost::system::error_code ignored;
    tcp.socket().shutdown(tcp::socket::shutdown_send, ignored);
    tcp.expires_after(std::chrono::seconds(2));
    char sink[4096];
    for (;;) {
      auto [ec, n] = co_await tcp.async_read_some(boost::asio::buffer(sink),
                                                  boost::asio::as_tuple(boost::asio::use_awaitable));
      if (ec) co_return;
    }
  }

  boost::asio::io_context io_;
  boost::asio::ssl::context context_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<long> idle_ms_{30'000};
  std::atomic<int> connections_{0};
  std::atomic<int> handshakes_{0};
  std::atomic<int> failed_handshakes_{0};
  mutable std::mutex mu_;
  std::vector<Request> requests_;
  std::vector<std::string> server_names_;
};

}  // namespace usher::test
