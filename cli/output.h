// Text output shared by the saga commands: aligned tables, colours (only on a
// terminal, never under NO_COLOR), and the short forms of times, durations and
// JSON values that tables and timelines print. Every value from a saga is
// printed through string_at, compact_json or printable (usher/printable.h),
// so no control character in it reaches the terminal.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "usher/definition.h"
#include "usher/duration.h"

namespace usher::cli {

// Whether stdout is a terminal that should get ANSI colours. Decided once.
bool color_enabled();

enum class Color { kNone, kGreen, kYellow, kRed, kCyan, kDim, kBold };
// Wraps `text` in the colour's escape codes when colours are enabled.
std::string paint(const std::string& text, Color color);
// The colour of a saga, step or compensation status word.
Color status_color(const std::string& status);

// Columns padded to their widest cell; the last column is not padded. Widths
// count code points, not bytes, and ignore colour escapes.
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add_row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of a UTF-8 string without its ANSI escapes.
size_t display_width(const std::string& text);
std::string pad_right(const std::string& text, size_t width);

// A JSON string field, or nullopt when absent, null or not a string. Made
// printable (usher/printable.h): values come from sagas, that is from clients
// and services, and are shown on a terminal.
std::optional<std::string> string_at(const Json& object, const char* key);
// An RFC 3339 field parsed to µs since the epoch.
std::optional<int64_t> time_at(const Json& object, const char* key);

// "2026-11-21 05:25:00" (UTC) from RFC 3339 text; "-" for null.
std::string table_time(const std::optional<std::string>& rfc3339);
// "05:25:00.123" (UTC time of day) from µs since the epoch.
std::string clock_time(int64_t micros);
// A measured span (µs, between two recorded times) written as usher writes
// every duration (format_duration, usher/duration.h), rounded to what a reader
// can use: to the millisecond under a minute ("3ms", "1.253s"), the second
// under an hour ("125s"), the minute under a day ("182m"), the hour beyond
// ("28h"). Under half a millisecond it is "<1ms"; zero or less is "0s".
std::string format_elapsed(int64_t micros);
// Compact JSON, cut to `max_chars` code points with an ellipsis, printable.
std::string compact_json(const Json& value, size_t max_chars = 160);
// "1 attempt", "3 attempts".
std::string plural(int64_t n, const char* one, const char* many);

}  // namespace usher::cli
