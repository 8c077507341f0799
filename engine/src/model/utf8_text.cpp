#include "usher/service_text.h"
#include "usher/printable.h"

#include <algorithm>
#include <vector>

namespace usher {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026

// Length of the well-formed UTF-8 sequence at the start of `s`, or 0 when the
// first byte does not begin one (RFC 3629, table 3-7 of the Unicode standard).
size_t sequence_length(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  const unsigned char b = byte(0);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return cont(1) ? 2 : 0;
  if (b == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (b == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;  // no surrogates
  if (b == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xF1 && b <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  while (!text.empty()) {
    size_t n = sequence_length(text);
    if (n == 0) return false;
    text.remove_prefix(n);
  }
  return true;
}

std::string valid_utf8(std::string_view text, size_t max_bytes) {
  // First the whole text made valid, then cut: a cut can then only fall
  // between two characters of the result.
  std::string clean;
  clean.reserve(std::min(text.size(), max_bytes + 4));
  std::vector<size_t> starts;  // where each character of `clean` begins, once past the bound
  while (!text.empty()) {
    if (clean.size() > max_bytes) break;  // enough to know it is cut
    const size_t n = sequence_length(text);
    starts.push_back(clean.size());
    if (n == 0) {
      clean += kReplacement;
      text.remove_prefix(1);
      continue;
    }
    const auto b0 = static_cast<unsigned char>(text[0]);
    const bool c0_control = n == 1 && ((b0 < 0x20 && b0 != '\t') || b0 == 0x7F);
    const bool c1_control = n == 2 && b0 == 0xC2 && static_cast<unsigned char>(text[1]) < 0xA0;
    if (c0_control || c1_control) {
      clean.push_back(' ');
    } else {
      clean.append(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  if (clean.size() <= max_bytes && text.empty()) return clean;
  // Too long: keep whole characters up to the bound less the ellipsis.
  const size_t room = max_bytes >= kEllipsis.size() ? max_bytes - kEllipsis.size() : 0;
  size_t cut = 0;
  for (size_t at : starts) {
    if (at > room) break;
    cut = at;
  }
  clean.resize(cut);
  if (max_bytes >= kEllipsis.size()) clean += kEllipsis;
  return clean;
}

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto escape = [](std::string& out, unsigned char code) {
    out += "\\u00";
    out += kHex[code >> 4];
    out += kHex[code & 0xF];
  };
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t n = sequence_length(text);
    if (n == 0) {
      out += kReplacement;
      text.remove_prefix(1);
      continue;
    }
    const auto b0 = static_cast<unsigned char>(text[0]);
    if (n == 1 && (b0 < 0x20 || b0 == 0x7F)) {
      escape(out, b0);
    } else if (n == 2 && b0 == 0xC2 && static_cast<unsigned char>(text[1]) < 0xA0) {
      escape(out, static_cast<unsigned char>(text[1]));  // U+0080–U+009F is C2 80–C2 9F
    } else {
      out.append(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

}  // namespace usher
