// Values and patterns for the JSON Schema validator: lenient UTF-8, exact
// number comparison, deep equality, JSON pointer escaping, and the bounds that
// keep std::regex away from the stack limit.
#include <algorithm>
#include <cmath>
#include <limits>

#include "model/json_schema_tree.h"

namespace usher::schema {

// ---- Values -------------------------------------------------------------------

// Decodes the code point at s[i] and advances i. A malformed sequence yields
// U+FFFD and consumes one byte, so every byte string decodes.
namespace {

char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (s.size() - i < len) {
    ++i;
    return 0xFFFD;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++i;
    return 0xFFFD;
  }
  i += len;
  return cp;
}

}  // namespace

void decode_utf8(std::string_view s, std::wstring& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size();) out.push_back(static_cast<wchar_t>(next_code_point(s, i)));
}

std::uint64_t count_code_points(std::string_view s) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++n) next_code_point(s, i);
  return n;
}

bool is_integral(double d) { return std::isfinite(d) && std::trunc(d) == d; }

// Exact comparison of an integer held as int64 or uint64 with a double; a
// cast of either to the other's type would round.
namespace {

std::partial_ordering compare_integer_double(const Json& integer, double d) {
  if (std::isnan(d)) return std::partial_ordering::unordered;
  const double t = std::trunc(d);
  const auto fraction = [&] {
    if (d == t) return std::partial_ordering::equivalent;
    return d > t ? std::partial_ordering::less : std::partial_ordering::greater;
  };
  if (integer.is_number_unsigned()) {
    const auto u = integer.get<std::uint64_t>();
    if (d < 0) return std::partial_ordering::greater;
    if (d >= 18446744073709551616.0) return std::partial_ordering::less;
    const auto tu = static_cast<std::uint64_t>(t);
    if (u != tu) return u <=> tu;
    return fraction();
  }
  const auto s = integer.get<std::int64_t>();
  if (d < -9223372036854775808.0) return std::partial_ordering::greater;
  if (d >= 9223372036854775808.0) return std::partial_ordering::less;
  const auto ts = static_cast<std::int64_t>(t);
  if (s != ts) return s <=> ts;
  return fraction();
}

}  // namespace

std::partial_ordering compare_numbers(const Json& a, const Json& b) {
  if (a.is_number_float() && b.is_number_float()) return a.get<double>() <=> b.get<double>();
  if (b.is_number_float()) return compare_integer_double(a, b.get<double>());
  if (a.is_number_float()) return 0 <=> compare_integer_double(b, a.get<double>());
  if (a.is_number_unsigned() && b.is_number_unsigned()) {
    return a.get<std::uint64_t>() <=> b.get<std::uint64_t>();
  }
  if (!a.is_number_unsigned() && !b.is_number_unsigned()) {
    return a.get<std::int64_t>() <=> b.get<std::int64_t>();
  }
  // One signed, one unsigned: a negative one is smaller, otherwise both fit uint64.
  if (a.is_number_unsigned()) {
    const auto s = b.get<std::int64_t>();
    if (s < 0) return std::partial_ordering::greater;
    return a.get<std::uint64_t>() <=> static_cast<std::uint64_t>(s);
  }
  const auto s = a.get<std::int64_t>();
  if (s < 0) return std::partial_ordering::less;
  return static_cast<std::uint64_t>(s) <=> b.get<std::uint64_t>();
}

// Deep equality in which numbers compare by value (1 == 1.0). The recursion
// stops at the shallower side, which is always a value from the schema, whose
// depth compile() has bounded.
bool json_equal(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return std::is_eq(compare_numbers(a, b));
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::null: return true;
    case Json::value_t::boolean: return a.get<bool>() == b.get<bool>();
    case Json::value_t::string:
      return a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    case Json::value_t::array:
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!json_equal(a[i], b[i])) return false;
      }
      return true;
    case Json::value_t::object:
      if (a.size() != b.size()) return false;
      for (auto it = a.begin(); it != a.end(); ++it) {
        const auto other = b.find(it.key());
        if (other == b.end() || !json_equal(*it, *other)) return false;
      }
      return true;
    default: return a == b;  // binary and discarded values never come from JSON text
  }
}

bool deeper_than(const Json& v, int limit) {
  if (limit < 0) return true;
  if (!v.is_structured()) return false;
  for (const auto& child : v) {
    if (deeper_than(child, limit - 1)) return true;
  }
  return false;
}

std::string quote(const Json& v) { return v.dump(-1, ' ', false, Json::error_handler_t::replace); }
std::string quote(const std::string& s) { return quote(Json(s)); }

const char* type_name(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "integer";
    case Json::value_t::number_float: return is_integral(v.get<double>()) ? "integer" : "number";
    default: return "non-JSON value";
  }
}

bool has_type(unsigned types, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return types & kTypeNull;
    case Json::value_t::boolean: return types & kTypeBoolean;
    case Json::value_t::object: return types & kTypeObject;
    case Json::value_t::array: return types & kTypeArray;
    case Json::value_t::string: return types & kTypeString;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return types & (kTypeNumber | kTypeInteger);
    case Json::value_t::number_float:
      return (types & kTypeNumber) || ((types & kTypeInteger) && is_integral(v.get<double>()));
    default: return false;
  }
}

void append_escaped(std::string& out, std::string_view token) {
  for (const char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
}

// ---- Patterns -------------------------------------------------------------------

// Estimates how large an automaton std::regex would build, counting each atom
// once and multiplying by the upper bound of a following {n,m}.
std::optional<std::string> pattern_too_complex(std::wstring_view p) {
  struct Group {
    std::uint64_t weight = 0;
    std::uint64_t last = 0;  // weight of the latest atom, which a quantifier repeats
  };
  std::vector<Group> groups(1);
  const auto add_atom = [&](std::uint64_t w) {
    groups.back().weight += w;
    groups.back().last = w;
  };
  const auto read_number = [&](std::size_t& j, std::uint64_t& n) {
    const std::size_t start = j;
    for (n = 0; j < p.size() && p[j] >= L'0' && p[j] <= L'9'; ++j) {
      n = std::min<std::uint64_t>(n * 10 + static_cast<std::uint64_t>(p[j] - L'0'), kMaxPatternRepeat + 1);
    }
    return j > start;
  };
  for (std::size_t i = 0; i < p.size(); ++i) {
    switch (p[i]) {
      case L'\\':
        ++i;
        add_atom(1);
        break;
      case L'[':
        for (++i; i < p.size() && p[i] != L']'; ++i) {
          if (p[i] == L'\\') ++i;
        }
        add_atom(1);
        break;
      case L'(':
        if (groups.size() > kMaxPatternNesting) {
          return "nests groups more than " + std::to_string(kMaxPatternNesting) + " deep";
        }
        groups.emplace_back();
        break;
      case L')':
        if (groups.size() == 1) {
          add_atom(1);  // unbalanced; std::regex reports it
        } else {
          const std::uint64_t w = groups.back().weight + 1;
          groups.pop_back();
          add_atom(w);
        }
        break;
      case L'{': {
        std::size_t j = i + 1;
        std::uint64_t low = 0;
        std::uint64_t high = 0;
        if (!read_number(j, low)) {
          add_atom(1);
          break;
        }
        high = low;
        if (j < p.size() && p[j] == L',') {
          ++j;
          read_number(j, high);
          high = std::max(high, low);
        }
        if (j >= p.size() || p[j] != L'}') {
          add_atom(1);
          break;
        }
        if (high > kMaxPatternRepeat) {
          return "repeats more than " + std::to_string(kMaxPatternRepeat) + " times";
        }
        groups.back().weight += groups.back().last * high;
        groups.back().last *= high + 1;
        i = j;
        break;
      }
      default: add_atom(1);
    }
    if (groups.back().weight > kMaxPatternWeight) return "is too large for the regex engine";
  }
  return std::nullopt;
}

// A regex that cannot be evaluated (the engine ran out of room) matches nothing.
bool pattern_matches(const Pattern& pattern, const std::wstring& text) {
  try {
    return std::regex_search(text, pattern.regex);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace usher::schema
