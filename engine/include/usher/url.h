// Addresses as usher reads them from workflows, flags and config files: the
// base URL of an HTTP step service ("https://pay.internal/v1") or of `usher
// serve` ("http://host:port/v1")
// and a listen address ("127.0.0.1:8080"). One parser, so that a service URL,
// the CLI's --server and serve's `listen` agree on brackets, ports and errors.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "usher/status.h"

namespace usher {

// "host[:port]" taken apart.
struct HostPort {
  std::string host;              // without brackets ("::1"); empty for ":8080"
  std::optional<uint16_t> port;  // nullopt when the text names none
};

// Splits "host", "host:port", "[v6]" or "[v6]:port". An IPv6 literal belongs
// in brackets; without them the last ':' starts the port, so "::1:8080" is
// host "::1" and port 8080. The port is decimal, 0 to 65535. An empty host is
// returned as such: callers say whether they accept it. kInvalidArgument says
// what is wrong and quotes nothing, for the caller to put after the text it
// was given: "unclosed '[' in host", "expected ':' after ']'",
// "bad port \"12ab\" (expected a number from 0 to 65535)".
Result<HostPort> split_host_port(std::string_view text);

// Where requests to one HTTP server go: "http[s]://host[:port][/base/path]".
struct HttpUrl {
  bool tls = false;       // https://: the server is spoken to over TLS
  std::string host;       // "127.0.0.1", "seats.internal", "::1" (no brackets)
  std::string port;       // decimal, 1 to 65535; "80" (http) or "443" (https) when the URL names none
  std::string base_path;  // "" or "/api/v1": what every request target starts with (no trailing slash)

  // "host:port", an IPv6 host in brackets: "[::1]:8080".
  std::string authority() const;
  // The Host header: authority() without the scheme's default port (:80, :443).
  std::string host_header() const;
  // "http://" or "https://" + authority() + base_path.
  std::string to_string() const;
};

struct HttpUrlOptions {
  // What the URL is, for errors: `server URL "ftp://x": unsupported scheme…`.
  std::string_view what = "URL";
  // Whether https:// is accepted (step services: the HTTP step adapter speaks
  // TLS). Where it is not (the CLI's --server), https:// is refused with
  // "https is not supported here".
  bool allow_https = false;
  // Whether "host:port" without "http://" is read as an http:// URL (the
  // CLI's --server accepts both).
  bool scheme_optional = false;
};

// Parses an http:// (or, with allow_https, https://) base URL. Trailing
// slashes of the path are dropped; a query, a fragment, user information, an
// empty host and port 0 are refused, and so is every other scheme
// ("unsupported scheme \"ftp\" (expected http://host[:port][/path])"). The
// workflow loader uses this parser too, so `usher validate` accepts exactly
// the URLs the HTTP step adapter can call. kInvalidArgument: `WHAT "TEXT": why`, e.g.
// `service URL "http://h:12ab": bad port "12ab" (expected a number from 1 to 65535)`.
Result<HttpUrl> parse_http_url(std::string_view text, const HttpUrlOptions& options = {});

}  // namespace usher
