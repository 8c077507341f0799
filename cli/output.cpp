#include "output.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "usher/inspect.h"
#include "usher/printable.h"

namespace usher::cli {

bool color_enabled() {
  static const bool enabled = [] {
    const char* no_color = std::getenv("NO_COLOR");
    if (no_color && *no_color) return false;
    const char* term = std::getenv("TERM");
    if (term && std::string(term) == "dumb") return false;
    return isatty(STDOUT_FILENO) == 1;
  }();
  return enabled;
}

std::string paint(const std::string& text, Color color) {
  if (color == Color::kNone || !color_enabled()) return text;
  const char* code = "";
  switch (color) {
    case Color::kGreen: code = "32"; break;
    case Color::kYellow: code = "33"; break;
    case Color::kRed: code = "31"; break;
    case Color::kCyan: code = "36"; break;
    case Color::kDim: code = "2"; break;
    case Color::kBold: code = "1"; break;
    case Color::kNone: break;
  }
  return std::string("\x1b[") + code + "m" + text + "\x1b[0m";
}

Color status_color(const std::string& status) {
  if (status == "completed" || status == "succeeded") return Color::kGreen;
  if (status == "compensated" || status == "compensating") return Color::kYellow;
  if (status == "stuck" || status == "failed" || status == "unknown" || status == "terminated") return Color::kRed;
  if (status == "running") return Color::kCyan;
  if (status == "pending") return Color::kDim;
  return Color::kNone;
}

size_t display_width(const std::string& text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0x1b) {  // skip "ESC [ ... m"
      while (i < text.size() && text[i] != 'm') ++i;
      continue;
    }
    if ((c & 0xC0) != 0x80) ++width;  // count lead bytes only
  }
  return width;
}

std::string pad_right(const std::string& text, size_t width) {
  const size_t w = display_width(text);
  return w >= width ? text : text + std::string(width - w, ' ');
}

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths(headers_.size(), 0);
  for (size_t c = 0; c < headers_.size(); ++c) widths[c] = display_width(headers_[c]);
  for (const auto& row : rows_)
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string text;
    for (size_t c = 0; c < headers_.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const bool last = c + 1 == headers_.size();
      text += last ? cell : pad_right(cell, widths[c]) + "  ";
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << (header ? paint(text, Color::kBold) : text) << "\n";
  };
  line(headers_, true);
  for (const auto& row : rows_) line(row, false);
}

std::optional<std::string> string_at(const Json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return printable(it->get_ref<const std::string&>());
}

std::optional<int64_t> time_at(const Json& object, const char* key) {
  auto text = string_at(object, key);
  return text ? parse_time(*text) : std::nullopt;
}

std::string table_time(const std::optional<std::string>& rfc3339) {
  if (!rfc3339) return "-";
  auto us = parse_time(*rfc3339);
  if (!us) return *rfc3339;
  std::string t = format_time(*us);  // 2026-11-21T05:25:00.123Z
  return t.substr(0, 10) + " " + t.substr(11, 8);
}

std::string clock_time(int64_t micros) { return format_time(micros).substr(11, 12); }

std::string format_elapsed(int64_t us) {
  if (us <= 0) return format_duration(Millis{0});
  constexpr int64_t kMinute = 60'000, kHour = 60 * kMinute, kDay = 24 * kHour;
  int64_t ms = (us + 500) / 1'000;
  if (ms == 0) return "<1ms";
  const int64_t step = ms < kMinute ? 1 : ms < kHour ? 1'000 : ms < kDay ? kMinute : kHour;
  ms = (ms + step / 2) / step * step;
  return format_duration(Millis{ms});
}

std::string compact_json(const Json& value, size_t max_chars) {
  // JSON escapes C0 controls in strings but leaves DEL and C1 raw.
  std::string text = printable(value.dump(-1, ' ', false, Json::error_handler_t::replace));
  if (display_width(text) <= max_chars) return text;
  // Cut on a code point boundary.
  size_t points = 0, i = 0;
  for (; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && ++points > max_chars - 1) break;
  }
  return text.substr(0, i) + "…";
}

std::string plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace usher::cli
