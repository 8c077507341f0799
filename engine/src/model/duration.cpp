#include "usher/duration.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <utility>

namespace usher {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t millis;
};

// Longest suffix first so that "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 5> kUnits = {{{"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000},
                                         {"d", 86'400'000}}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  size_t i = 0;
  // Digits are bounded so the integer part cannot overflow before the range check.
  int64_t whole = 0;
  size_t whole_digits = 0;
  while (i < text.size() && is_digit(text[i])) {
    if (++whole_digits > 12) return std::nullopt;
    whole = whole * 10 + (text[i] - '0');
    ++i;
  }
  // The fraction is kept as numerator / denominator to stay exact.
  int64_t frac = 0;
  int64_t frac_den = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t frac_digits = 0;
    while (i < text.size() && is_digit(text[i])) {
      if (++frac_digits > 6) return std::nullopt;
      frac = frac * 10 + (text[i] - '0');
      frac_den *= 10;
      ++i;
    }
    if (frac_digits == 0) return std::nullopt;
  }
  if (whole_digits == 0) return std::nullopt;
  std::string_view suffix = text.substr(i);
  for (const auto& unit : kUnits) {
    if (suffix != unit.suffix) continue;
    if (whole > kMaxDuration.count() / unit.millis) return std::nullopt;
    int64_t millis = whole * unit.millis;
    // frac < 10^6 and unit.millis <= 8.64e7, so the product fits in 64 bits.
    int64_t frac_millis = frac * unit.millis;
    if (frac_millis % frac_den != 0) return std::nullopt;  // not a whole number of ms
    millis += frac_millis / frac_den;
    if (millis > kMaxDuration.count()) return std::nullopt;
    return Millis{millis};
  }
  return std::nullopt;
}

std::string format_duration(Millis d) {
  if (d.count() < 0) return "-" + format_duration(-d);
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  // d, h, m, s: the largest that holds it whole.
  for (auto it = kUnits.rbegin(); it != kUnits.rend() && it->millis >= 1'000; ++it)
    if (ms % it->millis == 0) return std::to_string(ms / it->millis) + std::string(it->suffix);
  if (ms < 1'000) return std::to_string(ms) + "ms";
  // Seconds and the milliseconds as a fraction, trailing zeros dropped:
  // exact, and parse_duration takes up to six decimals.
  char fraction[8];
  std::snprintf(fraction, sizeof fraction, ".%03d", static_cast<int>(ms % 1'000));
  std::string text = std::to_string(ms / 1'000) + fraction;
  while (text.back() == '0') text.pop_back();
  return text + "s";
}

}  // namespace usher
