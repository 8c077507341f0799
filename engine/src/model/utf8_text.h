// Text that came from outside (a service's error body, a Kafka reply, a
// header) made safe to store and show: valid UTF-8, cut on a character
// boundary. DESIGN.md section 3: "Text from services is stored as valid UTF-8".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace usher {

// The longest text usher keeps from a service's answer (bytes).
inline constexpr size_t kMaxServiceTextBytes = 512;

// `text` as valid UTF-8 of at most `max_bytes` bytes: every byte that is not
// part of a well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF) becomes U+FFFD; a text longer than `max_bytes` is cut
// on a character boundary and ends with "…" (the ellipsis fits in the bound).
// ASCII control characters other than tab become spaces, so the text is one
// line and carries no terminal escapes.
std::string valid_utf8(std::string_view text, size_t max_bytes = kMaxServiceTextBytes);

// True when `text` is well-formed UTF-8 (RFC 3629).
bool is_valid_utf8(std::string_view text);

}  // namespace usher
