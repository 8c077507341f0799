// What usher keeps of what a service sends, for anyone writing a step
// adapter: text made valid UTF-8 and bounded (docs/semantics.md: "Text from
// services is stored as valid UTF-8"), and a bound on how deep a JSON reply
// may nest before it is not parsed at all.
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

// How deep JSON from outside (a step's reply, a Kafka message) may nest:
// deeper is no answer a step service gives, and the bound keeps every
// recursive walk of a stored output shallow.
inline constexpr size_t kMaxJsonDepth = 64;

// True when `text`, read as JSON, opens more than `max_depth` arrays or
// objects inside one another (brackets inside strings do not count). One pass
// over the bytes with a counter, no recursion and no allocation, so it is safe
// before the parser: a 400 KB "[[[[…" costs one loop.
bool json_deeper_than(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace usher
