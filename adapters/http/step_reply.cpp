#include "http/step_reply.h"

#include <charconv>
#include <cstdio>
#include <ctime>

#include <boost/asio/ip/address.hpp>

namespace usher::http_step {

std::string ServiceUrl::host_header() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  if (port != "80") h += ":" + port;
  return h;
}

Result<ServiceUrl> parse_service_url(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("service URL \"" + std::string(url) + "\": " + std::string(why));
  };
  constexpr std::string_view kHttp = "http://";
  if (url.starts_with("https://"))
    return bad("https is not supported by the HTTP step adapter; use http:// (for example behind a TLS sidecar)");
  if (!url.starts_with(kHttp)) return bad("expected http://host[:port][/path]");
  std::string_view rest = url.substr(kHttp.size());
  const size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (!path.empty() && path.front() != '/') return bad("query strings and fragments are not allowed");
  if (authority.find('@') != std::string_view::npos) return bad("user information is not allowed");

  ServiceUrl out;
  std::string_view port;
  if (authority.starts_with("[")) {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("expected ':' after ']'");
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (port.empty()) {
    out.port = "80";
  } else {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
      return bad("bad port \"" + std::string(port) + "\"");
    out.port = std::to_string(value);
  }
  while (path.ends_with('/')) path.remove_suffix(1);
  out.base_path = std::string(path);
  boost::system::error_code ec;
  boost::asio::ip::make_address(out.host, ec);
  out.host_is_ip = !ec;
  return out;
}

namespace {

// IMF-fixdate only ("Sun, 06 Nov 1994 08:49:37 GMT"): RFC 9110 says senders
// must produce it; the two obsolete forms are not worth a parser here.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view v) {
  if (v.size() != 29 || v.substr(25) != " GMT") return std::nullopt;
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto num = [&](size_t at, size_t len, int& out) {
    auto [end, ec] = std::from_chars(v.data() + at, v.data() + at + len, out);
    return ec == std::errc{} && end == v.data() + at + len;
  };
  std::tm tm{};
  int month = -1;
  for (int i = 0; i < 12; ++i)
    if (v.substr(8, 3) == kMonths[i]) month = i;
  if (month < 0 || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
      v[22] != ':')
    return std::nullopt;
  if (!num(5, 2, tm.tm_mday) || !num(12, 4, tm.tm_year) || !num(17, 2, tm.tm_hour) ||
      !num(20, 2, tm.tm_min) || !num(23, 2, tm.tm_sec))
    return std::nullopt;
  tm.tm_mon = month;
  tm.tm_year -= 1900;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Millis> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (value.front() >= '0' && value.front() <= '9') {
    uint64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
    constexpr uint64_t kMaxSeconds = 365ull * 24 * 3600;  // keeps the multiplication in range
    return Millis(std::min(seconds, kMaxSeconds) * 1000);
  }
  auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  if (*when <= now) return Millis(0);
  return std::chrono::duration_cast<Millis>(*when - now);
}

std::string format_duration(Millis d) {
  const auto ms = d.count();
  if (ms % 1000 != 0) {
    if (ms < 1000) return std::to_string(ms) + "ms";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(ms) / 1000.0);
    return buf;
  }
  const auto s = ms / 1000;
  if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string call_label(const StepCall& call) {
  return call.service.name + "." + call.operation;
}

std::string body_excerpt(std::string_view body, size_t max) {
  body = trim(body);
  std::string out;
  const size_t n = std::min(body.size(), max);
  out.reserve(n + 3);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(body[i]);
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
  }
  if (body.size() > max) out += "\xe2\x80\xa6";  // "…"
  return out;
}

StepResult classify_reply(const StepCall& call, unsigned status, std::string_view reason,
                          std::string_view body, std::string_view retry_after,
                          std::chrono::system_clock::time_point now) {
  // The text of a non-2xx answer: the status and what the service said, or
  // the reason phrase when it said nothing.
  auto answer = [&] {
    std::string text = call_label(call) + ": " + std::to_string(status);
    std::string excerpt = body_excerpt(body);
    if (excerpt.empty()) excerpt = std::string(reason);
    if (!excerpt.empty()) text += " " + excerpt;
    return text;
  };

  if (status >= 200 && status < 300) {
    if (trim(body).empty()) return StepResult::ok(Json::object());
    Json out = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    // Transient, not failed: the service may have done the work and only
    // garbled the answer, so the step must end compensated, never ignored.
    if (out.is_discarded())
      return StepResult::transient("step \"" + call.step + "\": " + std::to_string(status) +
                                   " reply is not JSON: " + body_excerpt(body, 80));
    return StepResult::ok(std::move(out));
  }
  if (status == 408 || status == 425 || status == 429 || status >= 500)
    return StepResult::transient(answer(), parse_retry_after(retry_after, now));
  // Other 4xx: the service understood and said no. 1xx and 3xx are not
  // followed (a redirected POST is a configuration mistake retries won't fix).
  return StepResult::failed(answer());
}

}  // namespace usher::http_step
