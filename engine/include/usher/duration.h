// Durations as usher reads and writes them, in workflow files (docs/workflow-format.md),
// in `?wait=` and in every message that names one ("no answer within 5s"): a
// number and a unit, "250ms", "1.5s", "10m", "2h", "1d".
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "usher/definition.h"

namespace usher {

// The longest duration accepted (100 years): anything longer is a typo, and
// the bound keeps every later arithmetic on Millis far from overflow.
inline constexpr Millis kMaxDuration{100LL * 365 * 24 * 3600 * 1000};

// A number followed by ms, s, m, h or d. A fraction is allowed when it comes
// to whole milliseconds ("1.5s", not "1.5ms"), so that writing a value never
// silently rounds it. nullopt for anything else, or above kMaxDuration.
std::optional<Millis> parse_duration(std::string_view text);

// The one way usher writes a duration, exact and read back by
// parse_duration() to the same value:
//   - in the largest of d, h, m and s that holds it whole: "1d", "2h", "2m",
//     "90s", "5s"; zero is "0s";
//   - else under a second in ms: "250ms";
//   - else in seconds with the milliseconds as a decimal fraction: "1.5s",
//     "61.25s".
// A negative duration is written as its magnitude after a '-' (which
// parse_duration does not accept).
std::string format_duration(Millis d);

}  // namespace usher
