// Fuzz target: the HTTP step adapter's reply classification
// (adapters/http/step/step_reply.h), whole and cut off. Whatever status,
// reason, Retry-After and body a service (or a man in the middle) sends, the
// result is one of the outcomes, never a crash or a throw, however deep or
// large the body; what it keeps is storable (valid UTF-8 of at most 512
// bytes) and a 2xx output is no deeper than the limit.
//
// Input layout: 2 bytes status (big-endian, taken modulo 600), 1 byte the
// length R of the Retry-After value, R bytes of it, then the body; the reason
// phrase is the body's first 16 bytes, so it is as hostile as the body.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "http/step/step_reply.h"
#include "usher/service_text.h"

namespace {

void check_storable(const std::string& text) {
  if (!usher::is_valid_utf8(text) || text.size() > usher::kMaxServiceTextBytes) std::abort();
}

// Depth of a stored output, without recursion: its own walk must not be the
// thing that overflows.
size_t depth_of(const usher::Json& j) {
  return usher::json_deeper_than(j.dump(), usher::http_step::kMaxReplyDepth) ? SIZE_MAX : 0;
}

void check(const usher::StepResult& r, std::string_view body) {
  check_storable(r.error);
  check_storable(r.note);
  if (r.outcome == usher::Outcome::kOk) {
    // The output is the JSON body, whatever its type (docs/semantics.md), or
    // {} with a note; never deeper than the limit, never a value read from
    // part of a body that is not JSON as a whole (a NUL cuts nlohmann's parse).
    if (r.output.is_discarded() || depth_of(r.output) == SIZE_MAX) std::abort();
    if (body.find('\0') != std::string_view::npos && r.output != usher::Json::object()) std::abort();
  } else if (r.error.empty()) {
    std::abort();  // a refusal says why
  }
  if (r.retry_after && r.retry_after->count() < 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const unsigned status = ((static_cast<unsigned>(data[0]) << 8) | data[1]) % 600;
  const size_t retry_length = std::min<size_t>(data[2], size - 3);
  std::string_view retry_after(reinterpret_cast<const char*>(data + 3), retry_length);
  std::string_view body(reinterpret_cast<const char*>(data + 3 + retry_length), size - 3 - retry_length);
  std::string_view reason = body.substr(0, 16);

  usher::StepCall call;
  call.service.name = "payments";
  call.operation = "charge";
  call.step = "pay";
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  check(usher::http_step::classify_reply(call, status, reason, body, retry_after, now), body);
  check(usher::http_step::classify_partial_reply(call, status, reason, body, "the reply was cut off", retry_after,
                                                 now),
        body);
  const std::string excerpt = usher::http_step::body_excerpt(body, 40);
  if (excerpt.size() > 40 || !usher::is_valid_utf8(excerpt)) std::abort();
  return 0;
}
