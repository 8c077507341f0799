#include "http/step/step_reply.h"

#include <algorithm>
#include <charconv>
#include <ctime>

#include "usher/service_text.h"

namespace usher::http_step {

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
  // A date before the epoch is in the past; one beyond what a time_point
  // holds in nanoseconds (the year 2262) is held there: either way no
  // conversion overflows (a year 0423 did, found by fuzzing).
  constexpr std::time_t kLatest = 9'000'000'000;
  return std::chrono::system_clock::from_time_t(std::clamp<std::time_t>(t, 0, kLatest));
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
  constexpr uint64_t kMaxSeconds = 365ull * 24 * 3600;  // a year at most, whatever the service says
  if (value.front() >= '0' && value.front() <= '9') {
    uint64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc{} || end != value.data() + value.size()) return std::nullopt;
    return Millis(std::min(seconds, kMaxSeconds) * 1000);
  }
  auto when = parse_http_date(value);
  if (!when) return std::nullopt;
  if (*when <= now) return Millis(0);
  return std::min(std::chrono::duration_cast<Millis>(*when - now), Millis(kMaxSeconds * 1000));
}

std::string call_label(const StepCall& call) {
  return call.service.name + "." + call.operation;
}

std::string body_excerpt(std::string_view body, size_t max) {
  std::string out = valid_utf8(trim(body), max);
  std::replace(out.begin(), out.end(), '\t', ' ');  // one line, one kind of blank
  // Control characters at either end became spaces: trim those too.
  const size_t first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  out.erase(out.find_last_not_of(' ') + 1);
  out.erase(0, first);
  return out;
}

namespace {

bool is_success(unsigned status) { return status >= 200 && status < 300; }
bool is_transient(unsigned status) { return status == 408 || status == 425 || status == 429 || status >= 500; }

// The result of a non-2xx answer whose text is `text`: transient for the
// statuses a retry may cure, else a business failure. 1xx and 3xx are not
// followed (a redirected POST is a configuration mistake retries won't fix).
StepResult by_status(unsigned status, std::string text, std::string_view retry_after,
                     std::chrono::system_clock::time_point now) {
  text = valid_utf8(text);
  if (is_transient(status)) return StepResult::transient(std::move(text), parse_retry_after(retry_after, now));
  return StepResult::failed(std::move(text));
}

// "payments.charge: 422 <excerpt>", or the reason phrase when the body says
// nothing.
std::string answer_text(const StepCall& call, unsigned status, std::string_view reason, std::string_view body,
                        size_t max_excerpt = 200) {
  std::string text = call_label(call) + ": " + std::to_string(status);
  std::string excerpt = body_excerpt(body, max_excerpt);
  if (excerpt.empty()) excerpt = body_excerpt(reason, 80);
  if (!excerpt.empty()) text += " " + excerpt;
  return text;
}

}  // namespace

StepResult classify_reply(const StepCall& call, unsigned status, std::string_view reason,
                          std::string_view body, std::string_view retry_after,
                          std::chrono::system_clock::time_point now) {
  if (!is_success(status)) return by_status(status, answer_text(call, status, reason, body), retry_after, now);
  // A 2xx is a success whatever its body (docs/semantics.md): the service
  // says it acted, so a garbled body must not turn the step into a retry or
  // a failure. Only the output is lost, and the note says why.
  if (trim(body).empty()) return StepResult::ok(Json::object());
  // Depth first, before the parser sees the body.
  if (json_deeper_than(body))
    return StepResult::ok_without_output("the reply is nested deeper than " + std::to_string(kMaxReplyDepth) +
                                         " levels");
  // The parser is told not to throw: a discarded value is how it reports bad
  // JSON, invalid UTF-8 in a string included. It also stops at a NUL byte as
  // if the text ended there, so "{…}\0garbage" would pass: JSON text never
  // holds a raw NUL, so such a body is not JSON (found by fuzzing).
  Json out = body.find('\0') == std::string_view::npos ? Json::parse(body, nullptr, /*allow_exceptions=*/false)
                                                        : Json(Json::value_t::discarded);
  if (out.is_discarded())
    return StepResult::ok_without_output(valid_utf8("the reply is not JSON: " + body_excerpt(body, 80)));
  return StepResult::ok(std::move(out));
}

StepResult classify_partial_reply(const StepCall& call, unsigned status, std::string_view reason,
                                  std::string_view body, std::string_view problem,
                                  std::string_view retry_after,
                                  std::chrono::system_clock::time_point now) {
  if (is_success(status)) return StepResult::ok_without_output(valid_utf8(problem));
  // A shorter excerpt of what arrived leaves room for the problem.
  std::string text = answer_text(call, status, reason, body, 120) + " (" + std::string(problem) + ")";
  return by_status(status, std::move(text), retry_after, now);
}

}  // namespace usher::http_step
