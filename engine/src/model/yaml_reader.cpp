#include "model/yaml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "model/suggest.h"
#include "usher/duration.h"
#include "usher/yaml_json.h"

namespace usher::yaml {
namespace {

constexpr std::string_view kCoreTag = "tag:yaml.org,2002:";

bool all_of(std::string_view s, bool (*pred)(char)) {
  if (s.empty()) return false;
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}
bool is_dec(char c) { return c >= '0' && c <= '9'; }
bool is_oct(char c) { return c >= '0' && c <= '7'; }
bool is_hex(char c) { return is_dec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// YAML 1.2 core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_core_float(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_dec(s[i])) ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_dec(s[i])) ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && is_dec(s[i])) ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

enum class Typed { kNull, kBool, kInt, kFloat, kSpecialFloat, kString };

// What the core schema makes of a plain scalar's text.
Typed classify(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Typed::kNull;
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") return Typed::kBool;
  std::string_view unsigned_part = (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
  if (all_of(unsigned_part, is_dec)) return Typed::kInt;
  if (s.size() > 2 && s[0] == '0' && s[1] == 'o' && all_of(s.substr(2), is_oct)) return Typed::kInt;
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x' && all_of(s.substr(2), is_hex)) return Typed::kInt;
  if (is_core_float(s)) return Typed::kFloat;
  std::string_view inf = unsigned_part;
  if (inf == ".inf" || inf == ".Inf" || inf == ".INF" || s == ".nan" || s == ".NaN" || s == ".NAN")
    return Typed::kSpecialFloat;
  return Typed::kString;
}

// The JSON value of a core-schema integer; a decimal beyond 64 bits becomes a
// double, as JSON parsers do; an octal or hex beyond 64 bits is refused.
std::optional<Json> parse_int(std::string_view s) {
  int base = 10;
  std::string_view digits = s;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
    base = s[1] == 'o' ? 8 : 16;
    digits = s.substr(2);
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (ec != std::errc{} || p != digits.data() + digits.size()) return std::nullopt;
    if (v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Json(static_cast<int64_t>(v));
    return Json(v);
  }
  if (!digits.empty() && digits[0] == '+') digits = digits.substr(1);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec == std::errc{} && p == digits.data() + digits.size()) return Json(v);
  if (digits[0] != '-') {
    uint64_t u = 0;
    auto [pu, ecu] = std::from_chars(digits.data(), digits.data() + digits.size(), u);
    if (ecu == std::errc{} && pu == digits.data() + digits.size()) return Json(u);
  }
  double d = 0;
  auto [pd, ecd] = std::from_chars(digits.data(), digits.data() + digits.size(), d);
  if (ecd != std::errc{} || pd != digits.data() + digits.size() || !std::isfinite(d)) return std::nullopt;
  return Json(d);
}

std::optional<double> parse_float(std::string_view s) {
  if (!s.empty() && s[0] == '+') s = s.substr(1);
  double d = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

std::string shown(const std::string& s) {
  // Long values are cut in messages; cut on a UTF-8 boundary so the message stays valid text.
  constexpr size_t kMax = 60;
  if (s.size() <= kMax) return "\"" + s + "\"";
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + s.substr(0, cut) + "...\"";
}

}  // namespace

SourcePos position(const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

Where Where::field(std::string_view name) const {
  return {owner, path.empty() ? std::string(name) : path + "." + std::string(name)};
}

std::string Where::prefix() const { return owner.empty() ? "" : owner + ": "; }

std::string Where::quoted_path() const { return "\"" + path + "\""; }

SourcePos Field::pos() const {
  if (value.IsNull()) return key_pos;
  SourcePos p = position(value);
  return p.line > 0 ? p : key_pos;
}

const Field* Fields::get(std::string_view key) const {
  for (const auto& f : fields)
    if (f.key == key) return &f;
  return nullptr;
}

bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

void Reader::error(SourcePos pos, const Where& where, const std::string& message) {
  ++errors_;
  out_.push_back(Diagnostic{file_, pos, where.prefix() + message});
}

bool Reader::enter(int depth, SourcePos pos, const Where& where) {
  if (depth > kMaxDepth) {
    error(pos, where, "nested more than " + std::to_string(kMaxDepth) + " levels deep (or an alias refers to itself)");
    return false;
  }
  if (node_budget_ == 0) {
    if (!budget_reported_) error(pos, where, "document too large: aliases expand to more than a million values");
    budget_reported_ = true;
    return false;
  }
  --node_budget_;
  return true;
}

std::optional<Fields> Reader::map(const YAML::Node& node, SourcePos pos, const Where& where,
                                  std::string_view expected, const std::vector<std::string>* allowed) {
  if (!node.IsMap()) {
    std::string what = where.path.empty() ? "" : "for " + where.quoted_path() + " ";
    error(pos, where, "expected " + std::string(expected) + " " + what + "(a mapping of key: value)");
    return std::nullopt;
  }
  Fields out;
  out.pos = pos;
  for (auto it = node.begin(); it != node.end(); ++it) {
    // Copies: yaml-cpp iterators hand out a temporary proxy, so a reference would dangle.
    const YAML::Node key = it->first;
    SourcePos key_pos = position(key);
    if (key_pos.line == 0) key_pos = pos;
    if (!key.IsScalar()) {
      error(key_pos, where, "keys must be plain strings" + (where.path.empty() ? "" : " in " + where.quoted_path()));
      continue;
    }
    std::string name = key.Scalar();
    if (out.get(name) != nullptr) {
      const Field* first = out.get(name);
      error(key_pos, where,
            "duplicate field \"" + name + "\"" + (where.path.empty() ? "" : " in " + where.quoted_path()) +
                " (first given at line " + std::to_string(first->key_pos.line) + ")");
      continue;
    }
    if (allowed != nullptr && std::find(allowed->begin(), allowed->end(), name) == allowed->end()) {
      error(key_pos, where,
            "unknown field " + shown(name) + (where.path.empty() ? "" : " in " + where.quoted_path()) +
                did_you_mean(name, *allowed));
      continue;
    }
    out.fields.push_back(Field{std::move(name), key, it->second, key_pos});
  }
  return out;
}

std::optional<std::string> Reader::text(const Field& f, const Where& where) {
  Where w = where.field(f.key);
  if (f.value.IsNull()) {
    error(f.pos(), where, "missing value for " + w.quoted_path());
    return std::nullopt;
  }
  if (!f.value.IsScalar()) {
    error(f.pos(), where, "expected text for " + w.quoted_path() + ", got a " + (f.value.IsMap() ? "mapping" : "list"));
    return std::nullopt;
  }
  return f.value.Scalar();
}

std::optional<int64_t> Reader::integer(const Field& f, const Where& where, int64_t min, int64_t max) {
  Where w = where.field(f.key);
  std::string expected = "an integer >= " + std::to_string(min);
  if (f.value.IsScalar() && is_plain(f.value) && classify(f.value.Scalar()) == Typed::kInt) {
    auto v = parse_int(f.value.Scalar());
    if (v && v->is_number_integer() && !(v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX))) {
      int64_t i = v->get<int64_t>();
      if (i >= min && i <= max) return i;
      if (i > max) {
        error(f.pos(), where, w.quoted_path() + " must be at most " + std::to_string(max) + ", got " + f.value.Scalar());
        return std::nullopt;
      }
    }
  }
  std::string got = f.value.IsScalar() ? shown(f.value.Scalar()) : f.value.IsNull() ? "nothing" : "a collection";
  error(f.pos(), where, w.quoted_path() + " must be " + expected + ", got " + got);
  return std::nullopt;
}

std::optional<double> Reader::number(const Field& f, const Where& where, double min) {
  Where w = where.field(f.key);
  if (f.value.IsScalar() && is_plain(f.value)) {
    Typed t = classify(f.value.Scalar());
    std::optional<double> v;
    if (t == Typed::kFloat) v = parse_float(f.value.Scalar());
    if (t == Typed::kInt) {
      auto j = parse_int(f.value.Scalar());
      if (j) v = j->get<double>();
    }
    if (v && *v >= min) return v;
  }
  std::string got = f.value.IsScalar() ? shown(f.value.Scalar()) : f.value.IsNull() ? "nothing" : "a collection";
  std::string min_text = Json(min).dump();
  error(f.pos(), where, w.quoted_path() + " must be a number >= " + min_text + ", got " + got);
  return std::nullopt;
}

std::optional<Millis> Reader::duration(const Field& f, const Where& where, bool allow_zero) {
  Where w = where.field(f.key);
  static const std::string kExpected =
      "(expected a number followed by ms, s, m, h or d, e.g. \"250ms\" or \"5s\")";
  if (!f.value.IsScalar()) {
    error(f.pos(), where, "invalid duration for " + w.quoted_path() + " " + kExpected);
    return std::nullopt;
  }
  const std::string& s = f.value.Scalar();
  auto d = parse_duration(s);
  if (!d) {
    error(f.pos(), where, "invalid duration " + shown(s) + " for " + w.quoted_path() + " " + kExpected);
    return std::nullopt;
  }
  if (d->count() == 0 && !allow_zero) {
    error(f.pos(), where, w.quoted_path() + " must be longer than 0");
    return std::nullopt;
  }
  return d;
}

std::optional<Json> Reader::scalar(const YAML::Node& node, SourcePos pos, const Where& where) {
  if (node.IsNull()) return Json(nullptr);
  const std::string& tag = node.Tag();
  const std::string& s = node.Scalar();
  if (tag == "!" || tag == std::string(kCoreTag) + "str") return Json(s);
  Typed want = Typed::kString;
  if (tag == "?") {
    want = classify(s);
  } else if (tag.rfind(kCoreTag, 0) == 0) {
    std::string_view name = std::string_view(tag).substr(kCoreTag.size());
    Typed actual = classify(s);
    bool fits = (name == "null" && actual == Typed::kNull) || (name == "bool" && actual == Typed::kBool) ||
                (name == "int" && actual == Typed::kInt) ||
                (name == "float" && (actual == Typed::kFloat || actual == Typed::kInt));
    if (!fits) {
      error(pos, where, shown(s) + " is not a valid !!" + std::string(name));
      return std::nullopt;
    }
    want = actual;
  } else {
    error(pos, where, "unsupported tag " + shown(tag) + " (only the standard !!str, !!int, !!float, !!bool, !!null)");
    return std::nullopt;
  }
  switch (want) {
    case Typed::kNull: return Json(nullptr);
    case Typed::kBool: return Json(s[0] == 't' || s[0] == 'T');
    case Typed::kString: return Json(s);
    case Typed::kSpecialFloat:
      error(pos, where, shown(s) + " cannot be represented in JSON (no infinity or NaN)");
      return std::nullopt;
    case Typed::kInt: {
      auto v = parse_int(s);
      if (!v) error(pos, where, "integer " + shown(s) + " is out of range");
      return v;
    }
    case Typed::kFloat: {
      auto v = parse_float(s);
      if (!v) {
        error(pos, where, "number " + shown(s) + " is out of range");
        return std::nullopt;
      }
      return Json(*v);
    }
  }
  return std::nullopt;
}

std::optional<Json> Reader::json(const YAML::Node& node, SourcePos pos, const Where& where) {
  return json_at(node, pos, where, 0);
}

std::optional<Json> Reader::json_at(const YAML::Node& node, SourcePos pos, const Where& where, int depth) {
  if (!enter(depth, pos, where)) return std::nullopt;
  SourcePos p = position(node);
  if (p.line == 0 || node.IsNull()) p = pos;
  if (node.IsMap()) {
    auto fields = map(node, p, where, "a mapping", nullptr);
    if (!fields) return std::nullopt;
    Json out = Json::object();
    bool ok = true;
    for (const auto& f : fields->fields) {
      auto v = json_at(f.value, f.pos(), where, depth + 1);
      if (!v) {
        ok = false;
        if (budget_reported_) break;
        continue;
      }
      out[f.key] = std::move(*v);
    }
    if (!ok) return std::nullopt;
    return out;
  }
  if (node.IsSequence()) {
    Json out = Json::array();
    bool ok = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      auto v = json_at(*it, p, where, depth + 1);
      if (!v) {
        ok = false;
        if (budget_reported_) break;
        continue;
      }
      out.push_back(std::move(*v));
    }
    if (!ok) return std::nullopt;
    return out;
  }
  return scalar(node, p, where);
}

}  // namespace usher::yaml

namespace usher {

Result<Json> yaml_to_json(std::string_view text) {
  std::vector<Diagnostic> diagnostics;
  yaml::Reader reader("", diagnostics);
  try {
    YAML::Node root = YAML::Load(std::string(text));
    auto json = reader.json(root, {1, 1}, {});
    if (json && diagnostics.empty()) return std::move(*json);
  } catch (const YAML::Exception& e) {
    return Status::invalid_argument(std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                                    ": " + e.msg);
  } catch (const std::exception& e) {
    return Status::invalid_argument(e.what());
  }
  const Diagnostic& d = diagnostics.front();
  return Status::invalid_argument(std::to_string(d.pos.line) + ":" + std::to_string(d.pos.col) + ": " + d.message);
}

}  // namespace usher
