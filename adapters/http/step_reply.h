// The pure parts of the HTTP step adapter: service URL parsing, Retry-After
// parsing and the classification of a reply into an Outcome (DESIGN.md
// section 3). No sockets here, so every row of the table is tested without a
// network; step_client.cpp only moves bytes and calls these.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "usher/adapter.h"
#include "usher/status.h"

namespace usher::http_step {

// A service URL "http://host[:port][/base/path]" taken apart. https:// is
// refused: the adapter speaks plain HTTP only (see step_client.h).
struct ServiceUrl {
  std::string host;       // "127.0.0.1", "seats.internal", "::1" (no brackets)
  std::string port;       // "80" when the URL has none
  std::string base_path;  // "" or "/v1" (no trailing slash)
  bool host_is_ip = false;
  // The value of the Host header: "host" for port 80, else "host:port".
  std::string host_header() const;
  // The pool key: one pool per host:port.
  std::string endpoint() const { return host + ":" + port; }
};

Result<ServiceUrl> parse_service_url(std::string_view url);

// Retry-After: delta-seconds ("120") or an IMF-fixdate HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT"). A date in the past is 0 ms. Anything else
// is nullopt (the header is advisory, a bad one is ignored).
std::optional<Millis> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now);

// "5s", "250ms", "1.5s": how a per-attempt timeout is written in errors.
std::string format_duration(Millis d);

// "payments.charge", the prefix of errors that quote a service's answer.
std::string call_label(const StepCall& call);

// What a complete HTTP reply means. `body` is the whole body (already capped
// by the parser), `retry_after` the Retry-After header ("" when absent).
StepResult classify_reply(const StepCall& call, unsigned status, std::string_view reason,
                          std::string_view body, std::string_view retry_after,
                          std::chrono::system_clock::time_point now);

// At most `max` bytes of a body for an error message, control characters
// replaced by spaces and "…" appended when cut.
std::string body_excerpt(std::string_view body, size_t max = 200);

}  // namespace usher::http_step
