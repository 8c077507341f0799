#include "usher/url.h"

#include <charconv>

namespace usher {
namespace {

constexpr std::string_view kHttp = "http://";
constexpr std::string_view kHttps = "https://";

// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool is_scheme(std::string_view s) {
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (s.empty() || !alpha(s[0])) return false;
  for (char c : s)
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return false;
  return true;
}

// A decimal port from `min` to 65535, or the reason it is not one.
Result<uint16_t> parse_port(std::string_view text, unsigned min) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < min || value > 65535)
    return Status::invalid_argument("bad port \"" + std::string(text) + "\" (expected a number from " +
                                    std::to_string(min) + " to 65535)");
  return static_cast<uint16_t>(value);
}

Result<HostPort> split(std::string_view text, unsigned min_port) {
  HostPort out;
  std::string_view port;
  bool has_port = false;
  if (text.starts_with('[')) {  // [v6] or [v6]:port
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return Status::invalid_argument("unclosed '[' in host");
    out.host = std::string(text.substr(1, close - 1));
    std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::invalid_argument("expected ':' after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = text.rfind(':');
    out.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = text.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    auto p = parse_port(port, min_port);
    if (!p) return p.status();
    out.port = *p;
  }
  return out;
}

}  // namespace

Result<HostPort> split_host_port(std::string_view text) { return split(text, 0); }

std::string HttpUrl::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + port;
}

std::string HttpUrl::host_header() const {
  if (port != (tls ? "443" : "80")) return authority();
  const bool v6 = host.find(':') != std::string::npos;
  return v6 ? "[" + host + "]" : host;
}

std::string HttpUrl::to_string() const { return std::string(tls ? kHttps : kHttp) + authority() + base_path; }

Result<HttpUrl> parse_http_url(std::string_view text, const HttpUrlOptions& options) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument(std::string(options.what) + " \"" + std::string(text) + "\": " + std::string(why));
  };
  const std::string expected = options.allow_https ? "http[s]://host[:port][/path]" : "http://host[:port][/path]";
  std::string_view rest = text;
  HttpUrl url;
  if (rest.starts_with(kHttps)) {
    if (!options.allow_https) return bad("https is not supported here; use http://");
    url.tls = true;
    rest.remove_prefix(kHttps.size());
  } else if (rest.starts_with(kHttp)) {
    rest.remove_prefix(kHttp.size());
  } else if (const size_t scheme_end = rest.find("://");
             scheme_end != std::string_view::npos && is_scheme(rest.substr(0, scheme_end))) {
    return bad("unsupported scheme \"" + std::string(rest.substr(0, scheme_end)) +
               "\" (expected " + expected + ")");
  } else if (!options.scheme_optional || scheme_end != std::string_view::npos) {
    return bad("expected " + expected);
  }
  const size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) return bad("query strings and fragments are not allowed");
  if (authority.find('@') != std::string_view::npos) return bad("user information is not allowed");

  auto parts = split(authority, 1);
  if (!parts) return bad(parts.status().message());
  if (parts->host.empty()) return bad("no host");
  url.host = std::move(parts->host);
  url.port = std::to_string(parts->port.value_or(url.tls ? 443 : 80));
  while (path.ends_with('/')) path.remove_suffix(1);
  url.base_path = std::string(path);
  return url;
}

}  // namespace usher
