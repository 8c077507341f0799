// The pure parts of the HTTP step adapter's replies: Retry-After parsing and
// the classification of a reply into an Outcome (docs/semantics.md). No
// sockets here, so every row of the table is tested without a network;
// http_step_adapter.cpp only moves bytes and calls these.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "usher/service_text.h"
#include "usher/adapter.h"
#include "usher/status.h"

namespace usher::http_step {

// Retry-After: delta-seconds ("120") or an IMF-fixdate HTTP-date
// ("Wed, 21 Oct 2015 07:28:00 GMT"). A date in the past is 0 ms. Anything else
// is nullopt (the header is advisory, a bad one is ignored).
std::optional<Millis> parse_retry_after(std::string_view value,
                                        std::chrono::system_clock::time_point now);

// "payments.charge", the prefix of errors that quote a service's answer.
std::string call_label(const StepCall& call);

// How deep a reply's JSON may nest before it is not parsed at all
// (model/json_depth.h): a deeper 2xx is a success of unknown output.
inline constexpr size_t kMaxReplyDepth = kMaxJsonDepth;
using usher::json_deeper_than;

// What a complete HTTP reply means (docs/semantics.md). `body` is the whole
// body (already capped by the parser), `retry_after` the Retry-After header
// ("" when absent).
//   - 2xx is kOk whatever the body: empty is {}; JSON nested deeper than
//     kMaxReplyDepth, or not JSON at all, is {} with a note saying why.
//   - 408, 425, 429 and 5xx are kTransient (with Retry-After), other
//     statuses kFailed; the error is "service.operation: STATUS excerpt".
// Every error and note is valid UTF-8 of at most kMaxServiceTextBytes.
StepResult classify_reply(const StepCall& call, unsigned status, std::string_view reason,
                          std::string_view body, std::string_view retry_after,
                          std::chrono::system_clock::time_point now);

// A reply whose status line and headers were read but whose body was not,
// entirely: cut off (the connection closed, the deadline passed) or larger
// than the limit. `problem` says which ("the reply was cut off: …").
//   - 2xx: the service said it succeeded, so kOk with output {} and `problem`
//     as the note (docs/semantics.md: "still a success, of unknown output").
//   - otherwise classified by status as classify_reply does, the error
//     quoting what arrived and then `problem` in parentheses.
StepResult classify_partial_reply(const StepCall& call, unsigned status, std::string_view reason,
                                  std::string_view body, std::string_view problem,
                                  std::string_view retry_after,
                                  std::chrono::system_clock::time_point now);

// At most `max` bytes of a body for an error message: surrounding white space
// trimmed, valid UTF-8 (invalid bytes become U+FFFD), control characters and
// tabs replaced by spaces, cut on a character boundary with "…" when longer
// (the "…" counted in `max`).
std::string body_excerpt(std::string_view body, size_t max = 200);

}  // namespace usher::http_step
