// Durations as written in workflow files: "250ms", "5s", "10m", "2h", "1d"
// (DESIGN.md section 2). A fraction is allowed when it comes to whole
// milliseconds ("1.5s"), so that writing a value never silently rounds it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "usher/definition.h"

namespace usher {

// The longest duration accepted (100 years): anything longer is a typo, and
// the bound keeps every later arithmetic on Millis far from overflow.
inline constexpr Millis kMaxDuration{100LL * 365 * 24 * 3600 * 1000};

// nullopt when `text` is not a number followed by ms, s, m, h or d, or exceeds kMaxDuration.
std::optional<Millis> parse_duration(std::string_view text);

// The shortest exact spelling in the same format: 1500ms -> "1500ms", 120000ms -> "2m".
std::string format_duration(Millis d);

}  // namespace usher
