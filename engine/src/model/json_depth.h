// How deep JSON from outside (a step's reply, a Kafka message) may nest
// before usher refuses to parse it: deeper is no answer a step service gives,
// and the bound keeps every recursive walk of a stored output shallow.
#pragma once

#include <cstddef>
#include <string_view>

namespace usher {

inline constexpr size_t kMaxJsonDepth = 64;

// True when `text`, read as JSON, opens more than `max_depth` arrays or
// objects inside one another (brackets inside strings do not count). One pass
// over the bytes with a counter, no recursion and no allocation, so it is safe
// before the parser: a 400 KB "[[[[…" costs one loop.
bool json_deeper_than(std::string_view text, size_t max_depth = kMaxJsonDepth);

}  // namespace usher
