#include "api_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <cctype>

namespace usher::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Result<HttpUrl> parse_server_url(const std::string& text) {
  return parse_http_url(text, {.what = "server URL", .scheme_optional = true});
}

std::string url_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {

// Everything one exchange needs, kept alive by the io_context's run.
struct Exchange {
  const HttpUrl* url;
  http::request<http::string_body> req;
  HttpResponse response;
  std::string error;  // set when the exchange failed before a full response
  bool done = false;
};

asio::awaitable<void> run_exchange(Exchange& ex, std::chrono::milliseconds timeout) {
  try {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    auto endpoints = co_await resolver.async_resolve(ex.url->host, ex.url->port, asio::use_awaitable);
    beast::tcp_stream stream(executor);
    stream.expires_after(timeout);
    co_await stream.async_connect(endpoints, asio::use_awaitable);
    co_await http::async_write(stream, ex.req, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    // API answers are JSON documents; a list page is at most about 1 MiB
    // (engine/src/view/list_page.h) and one saga is bounded by its events.
    parser.body_limit(64u << 20);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    auto& res = parser.get();
    ex.response.status = static_cast<int>(res.result_int());
    ex.response.content_type = std::string(res[http::field::content_type]);
    ex.response.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } catch (const boost::system::system_error& e) {
    ex.error = e.code() == beast::error::timeout ? "no answer within " + std::to_string(timeout.count()) + " ms"
                                                 : e.code().message();
  }
  ex.done = true;
}

}  // namespace

Result<HttpResponse> ApiClient::request(const std::string& method, const std::string& target,
                                        const std::optional<std::string>& json_body,
                                        const std::optional<std::string>& idempotency_key,
                                        std::chrono::milliseconds timeout) const {
  Exchange ex;
  ex.url = &url_;
  ex.req.method(http::string_to_verb(method));
  ex.req.target(url_.base_path + target);
  ex.req.version(11);
  ex.req.set(http::field::host, url_.authority());
  ex.req.set(http::field::user_agent, "usher-cli/" USHER_CLI_VERSION);
  ex.req.set(http::field::accept, "application/json");
  ex.req.set(http::field::connection, "close");
  if (!token_.empty()) ex.req.set(http::field::authorization, "Bearer " + token_);
  if (idempotency_key) ex.req.set("Idempotency-Key", *idempotency_key);
  if (json_body) {
    ex.req.set(http::field::content_type, "application/json");
    ex.req.body() = *json_body;
  }
  ex.req.prepare_payload();

  asio::io_context io;
  asio::co_spawn(io, run_exchange(ex, timeout), asio::detached);
  // The stream's expiry bounds connect, write and read; this bounds name
  // resolution too, which the stream cannot.
  io.run_for(timeout + std::chrono::milliseconds(500));
  const std::string where = url_.to_string();
  if (!ex.done) return Status::unavailable("cannot reach " + where + ": no answer within " +
                                           std::to_string(timeout.count()) + " ms");
  if (!ex.error.empty()) return Status::unavailable("cannot reach " + where + ": " + ex.error);
  return std::move(ex.response);
}

}  // namespace usher::cli
