// A small synchronous HTTP/1.1 client for the trigger API (docs/api.md),
// used by the CLI's --server mode. One request per connection: the CLI makes
// a handful of calls and exits, so keep-alive would buy nothing.
//
// Every request has a deadline covering resolve, connect, write and read; past
// it the request fails as unreachable, like a refused connection, so a hung
// server makes `usher` exit 3 instead of hanging the operator's terminal.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "usher/status.h"
#include "usher/url.h"

namespace usher::cli {

// The server's base URL: http://HOST[:PORT][/PREFIX], or HOST:PORT alone; https
// is refused (the API listens on plain HTTP, normally on 127.0.0.1).
Result<HttpUrl> parse_server_url(const std::string& text);

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

class ApiClient {
 public:
  ApiClient(HttpUrl url, std::string token) : url_(std::move(url)), token_(std::move(token)) {}

  // `target` is the path and query, e.g. "/v1/sagas?limit=5". Fails with
  // kUnavailable when the server cannot be reached or does not answer in
  // time; any HTTP status (including 4xx/5xx) is a successful exchange.
  Result<HttpResponse> request(const std::string& method, const std::string& target,
                               const std::optional<std::string>& json_body = std::nullopt,
                               const std::optional<std::string>& idempotency_key = std::nullopt,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  const HttpUrl& url() const { return url_; }

 private:
  HttpUrl url_;
  std::string token_;
};

// Percent-encodes a path segment or query value (RFC 3986 unreserved kept).
std::string url_encode(const std::string& text);

}  // namespace usher::cli
