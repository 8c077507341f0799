#include "http_feed.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <stdexcept>

namespace booking_history {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Cursors are opaque text: sent percent-encoded whatever they hold.
std::string url_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

}  // namespace

HttpFeed::HttpFeed(const std::string& server, std::string token) : token_(std::move(token)) {
  const std::string scheme = "http://";
  if (server.rfind(scheme, 0) != 0) throw std::invalid_argument("--server " + server + ": expected http://HOST:PORT");
  std::string rest = server.substr(scheme.size());
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    prefix_ = rest.substr(slash);
    rest.resize(slash);
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  }
  const size_t colon = rest.rfind(':');
  host_ = colon == std::string::npos ? rest : rest.substr(0, colon);
  port_ = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (host_.empty() || port_.empty()) throw std::invalid_argument("--server " + server + ": expected http://HOST:PORT");
}

std::optional<FeedPage> HttpFeed::page(const std::string& cursor, int limit, std::chrono::milliseconds wait,
                                       const std::atomic<bool>& stop, std::string& error) {
  std::string target = prefix_ + "/v1/events?limit=" + std::to_string(limit);
  if (!cursor.empty()) target += "&after=" + url_encode(cursor);
  if (wait.count() > 0) target += "&wait=" + std::to_string(wait.count()) + "ms";

  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::accept, "application/json");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  req.keep_alive(false);

  // Asynchronous operations run in short slices, so a SIGINT during a long
  // poll ends the wait at once instead of after `wait`.
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);  // a page of 1000 events with large inputs stays well below
  beast::error_code failed;
  bool done = false;
  auto finish = [&](beast::error_code ec) {
    failed = ec;
    done = true;
  };
  stream.expires_after(wait + std::chrono::seconds(30));
  resolver.async_resolve(host_, port_, [&](beast::error_code ec, tcp::resolver::results_type endpoints) {
    if (ec) return finish(ec);
    stream.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return finish(ec);
      http::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec) return finish(ec);
        http::async_read(stream, buffer, parser, [&](beast::error_code ec, size_t) { finish(ec); });
      });
    });
  });
  while (!done && !stop.load()) io.run_for(std::chrono::milliseconds(100));
  if (!done) {
    error = "stopped";
    return std::nullopt;
  }
  if (failed) {
    error = failed == beast::error::timeout ? "no answer in time" : failed.message();
    return std::nullopt;
  }
  const auto& res = parser.get();
  if (res.result() != http::status::ok) {
    error = "GET " + target + ": HTTP " + std::to_string(res.result_int()) + ": " + res.body().substr(0, 300);
    return std::nullopt;
  }
  nlohmann::json body = nlohmann::json::parse(res.body(), nullptr, false);
  auto events = body.is_object() ? body.find("events") : body.end();
  auto next = body.is_object() ? body.find("next") : body.end();
  if (!body.is_object() || events == body.end() || !events->is_array() || next == body.end() || !next->is_string()) {
    error = "GET " + target + ": not a feed page: " + res.body().substr(0, 300);
    return std::nullopt;
  }
  FeedPage page;
  page.next = next->get<std::string>();
  page.events.reserve(events->size());
  for (auto& e : *events) page.events.push_back(std::move(e));
  return page;
}

}  // namespace booking_history
