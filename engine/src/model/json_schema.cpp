// JSON Schema draft 7, compiled once into a flat vector of nodes and then
// walked against each instance.
//
// Keywords that validate: type, properties, patternProperties,
// additionalProperties, required, enum, const, items, additionalItems,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, as in draft 7),
// minLength, maxLength, pattern, minItems, maxItems, allOf, anyOf, oneOf, not,
// $ref and boolean schemas. patternProperties is included because
// additionalProperties is defined in terms of it: ignoring it would refuse
// properties that the schema allows. `definitions` is compiled so that its
// schemas are checked too.
//
// Keywords that are ignored (annotations, or not needed for `input:` blocks):
// $schema, $id, $comment, title, description, default, examples, readOnly,
// writeOnly, format, contentMediaType, contentEncoding, multipleOf,
// uniqueItems, contains, minProperties, maxProperties, dependencies,
// propertyNames, if/then/else. A $ref may still point into any of them.
//
// $ref: only fragments of the root document ("#", "#/definitions/x", any
// percent-encoded JSON pointer). $id does not change the base, so refs are
// always resolved against the root. Per draft 7, the siblings of $ref are
// ignored. A cycle of $ref/allOf/anyOf/oneOf/not that never descends into the
// instance would recurse forever, so compile() refuses it; every other cycle
// consumes one level of the instance per turn and ends with it.
//
// Robustness: validate() must survive any instance and compile() any schema,
// so recursion is bounded (schema nesting, validation depth), numbers are
// compared exactly across int64/uint64/double, strings are decoded leniently
// (a malformed UTF-8 byte counts as one code point), and patterns are matched
// on code points with libstdc++'s non-backtracking executor, whose recursion
// does not grow with the length of the string.
#include "model/json_schema.h"

#include <algorithm>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <optional>
#include <regex>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace usher {
namespace {

// Schema documents nested deeper than this are refused; the compiler recurses
// once per level.
constexpr int kMaxSchemaDepth = 200;
// Nested checks while validating (one per subschema applied); deeper instances
// get a violation instead of exhausting the stack.
constexpr int kMaxValidationDepth = 400;
// std::regex builds its automaton by recursion over group nesting, copies the
// operand of {n,m} n..m times and follows epsilon chains recursively while
// matching; these bounds keep all three far from the stack limit.
constexpr std::size_t kMaxPatternNesting = 32;
constexpr std::uint64_t kMaxPatternRepeat = 1000;
constexpr std::uint64_t kMaxPatternWeight = 4000;

static_assert(sizeof(wchar_t) == 4, "patterns are matched on code points held in wchar_t");

enum TypeBit : unsigned {
  kTypeNull = 1,
  kTypeBoolean = 2,
  kTypeObject = 4,
  kTypeArray = 8,
  kTypeNumber = 16,
  kTypeString = 32,
  kTypeInteger = 64,
};

struct Pattern {
  std::string source;
  std::wregex regex;
};

struct Node {
  bool reject_all = false;  // the boolean schema `false`
  int ref = -1;             // a $ref node has no other keywords
  unsigned types = 0;       // TypeBit set; 0 when there is no `type`
  std::string type_message;
  std::vector<std::pair<std::string, int>> properties;  // sorted by name
  std::vector<std::pair<Pattern, int>> pattern_properties;
  int additional_properties = -1;
  std::vector<std::string> required;
  std::optional<Json> const_value;
  std::string const_message;
  std::optional<std::vector<Json>> enum_values;
  std::string enum_message;
  int items = -1;                        // `items` as one schema for every item
  std::optional<std::vector<int>> tuple;  // `items` as an array of schemas
  int additional_items = -1;
  std::optional<Json> minimum, maximum, exclusive_minimum, exclusive_maximum;
  std::optional<std::uint64_t> min_length, max_length, min_items, max_items;
  std::optional<Pattern> pattern;
  std::vector<int> all_of, any_of, one_of;
  int not_schema = -1;
};

// ---- Values -------------------------------------------------------------------

// Decodes the code point at s[i] and advances i. A malformed sequence yields
// U+FFFD and consumes one byte, so every byte string decodes.
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

// JSON text for messages; never throws, even on strings that are not UTF-8.
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

// ---- Compiler -------------------------------------------------------------------

class Compiler {
 public:
  explicit Compiler(const Json& root) : root_(root) {}

  Status run(std::vector<Node>& nodes, int& root_index) {
    auto root = compile(root_, "", 0);
    if (!root) return root.status();
    if (Status s = resolve_refs(); !s) return s;
    if (Status s = check_cycles(); !s) return s;
    root_index = *root;
    nodes = std::move(nodes_);
    return Status::ok();
  }

 private:
  static Status error(const std::string& where, const std::string& what) {
    return Status::invalid_argument("schema at " + (where.empty() ? std::string("/") : where) + ": " +
                                    what);
  }

  static std::string child(const std::string& where, std::string_view key) {
    std::string out = where + "/";
    append_escaped(out, key);
    return out;
  }

  Result<int> compile(const Json& s, const std::string& where, int depth) {
    if (depth > kMaxSchemaDepth) {
      return error(where, "is nested more than " + std::to_string(kMaxSchemaDepth) + " schemas deep");
    }
    if (const auto it = by_address_.find(&s); it != by_address_.end()) return it->second;
    if (!s.is_object() && !s.is_boolean()) return error(where, "a schema must be an object or a boolean");
    const int index = static_cast<int>(nodes_.size());
    nodes_.emplace_back();
    where_.push_back(where);
    by_address_.emplace(&s, index);
    if (s.is_boolean()) {
      nodes_[index].reject_all = !s.get<bool>();
      return index;
    }
    if (const auto ref = s.find("$ref"); ref != s.end()) {
      if (!ref->is_string()) return error(child(where, "$ref"), "must be a string");
      pending_.push_back({index, ref->get<std::string>()});
      return index;
    }
    // Children are compiled into a local node: compiling them grows nodes_.
    Node node;
    if (Status st = keywords(s, where, depth, node); !st) return st;
    nodes_[index] = std::move(node);
    return index;
  }

  Status keywords(const Json& s, const std::string& where, int depth, Node& node) {
    const auto sub = [&](const Json& v, const std::string& at, int& out) -> Status {
      auto r = compile(v, at, depth + 1);
      if (!r) return r.status();
      out = *r;
      return Status::ok();
    };
    const auto schema_list = [&](const Json& v, const std::string& at, std::vector<int>& out) -> Status {
      if (!v.is_array() || v.empty()) return error(at, "must be a non-empty array of schemas");
      for (std::size_t i = 0; i < v.size(); ++i) {
        int n = -1;
        if (Status st = sub(v[i], at + "/" + std::to_string(i), n); !st) return st;
        out.push_back(n);
      }
      return Status::ok();
    };
    const auto number = [&](const Json& v, const std::string& at, std::optional<Json>& out) -> Status {
      if (!v.is_number()) return error(at, "must be a number");
      out = v;
      return Status::ok();
    };
    const auto count = [&](const Json& v, const std::string& at, std::optional<std::uint64_t>& out) -> Status {
      if (v.is_number_unsigned()) {
        out = v.get<std::uint64_t>();
      } else if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
        out = static_cast<std::uint64_t>(v.get<std::int64_t>());
      } else if (v.is_number_float() && is_integral(v.get<double>()) && v.get<double>() >= 0) {
        const double d = v.get<double>();
        out = d >= 18446744073709551616.0 ? std::numeric_limits<std::uint64_t>::max()
                                          : static_cast<std::uint64_t>(d);
      } else {
        return error(at, "must be a non-negative integer");
      }
      return Status::ok();
    };

    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& key = it.key();
      const Json& v = *it;
      const std::string at = child(where, key);
      Status st;
      if (key == "type") {
        st = type(v, at, node);
      } else if (key == "properties" || key == "definitions") {
        if (!v.is_object()) return error(at, "must be an object of schemas");
        for (auto p = v.begin(); p != v.end(); ++p) {
          int n = -1;
          if (st = sub(*p, child(at, p.key()), n); !st) return st;
          if (key == "properties") node.properties.emplace_back(p.key(), n);
        }
      } else if (key == "patternProperties") {
        if (!v.is_object()) return error(at, "must be an object of schemas");
        for (auto p = v.begin(); p != v.end(); ++p) {
          auto pattern = compile_pattern(p.key(), at);
          if (!pattern) return pattern.status();
          int n = -1;
          if (st = sub(*p, child(at, p.key()), n); !st) return st;
          node.pattern_properties.emplace_back(std::move(*pattern), n);
        }
      } else if (key == "additionalProperties") {
        st = sub(v, at, node.additional_properties);
      } else if (key == "required") {
        if (!v.is_array()) return error(at, "must be an array of strings");
        for (const auto& name : v) {
          if (!name.is_string()) return error(at, "must be an array of strings");
          node.required.push_back(name.get<std::string>());
        }
      } else if (key == "enum" || key == "const") {
        if (deeper_than(v, kMaxSchemaDepth - depth)) return error(at, "is nested too deeply");
        if (key == "const") {
          node.const_value = v;
          node.const_message = "must be equal to " + short_json(v, "the const value");
        } else {
          if (!v.is_array()) return error(at, "must be an array");
          node.enum_values = v.get<std::vector<Json>>();
          node.enum_message = "must be one of " + short_json(v, "the " + std::to_string(v.size()) + " values of enum");
        }
      } else if (key == "items") {
        if (v.is_array()) {
          node.tuple.emplace();
          for (std::size_t i = 0; i < v.size(); ++i) {
            int n = -1;
            if (st = sub(v[i], at + "/" + std::to_string(i), n); !st) return st;
            node.tuple->push_back(n);
          }
        } else {
          st = sub(v, at, node.items);
        }
      } else if (key == "additionalItems") {
        st = sub(v, at, node.additional_items);
      } else if (key == "minimum") {
        st = number(v, at, node.minimum);
      } else if (key == "maximum") {
        st = number(v, at, node.maximum);
      } else if (key == "exclusiveMinimum") {
        st = number(v, at, node.exclusive_minimum);
      } else if (key == "exclusiveMaximum") {
        st = number(v, at, node.exclusive_maximum);
      } else if (key == "minLength") {
        st = count(v, at, node.min_length);
      } else if (key == "maxLength") {
        st = count(v, at, node.max_length);
      } else if (key == "minItems") {
        st = count(v, at, node.min_items);
      } else if (key == "maxItems") {
        st = count(v, at, node.max_items);
      } else if (key == "pattern") {
        if (!v.is_string()) return error(at, "must be a string");
        auto pattern = compile_pattern(v.get<std::string>(), at);
        if (!pattern) return pattern.status();
        node.pattern = std::move(*pattern);
      } else if (key == "allOf") {
        st = schema_list(v, at, node.all_of);
      } else if (key == "anyOf") {
        st = schema_list(v, at, node.any_of);
      } else if (key == "oneOf") {
        st = schema_list(v, at, node.one_of);
      } else if (key == "not") {
        st = sub(v, at, node.not_schema);
      }
      if (!st) return st;
    }
    // Binary search in validate() needs them sorted; nlohmann objects already are.
    std::sort(node.properties.begin(), node.properties.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return Status::ok();
  }

  static std::string short_json(const Json& v, const std::string& otherwise) {
    std::string text = quote(v);
    return text.size() <= 80 ? text : otherwise;
  }

  static Status type(const Json& v, const std::string& at, Node& node) {
    static constexpr std::pair<std::string_view, unsigned> kNames[] = {
        {"null", kTypeNull},     {"boolean", kTypeBoolean}, {"object", kTypeObject},   {"array", kTypeArray},
        {"number", kTypeNumber}, {"string", kTypeString},   {"integer", kTypeInteger},
    };
    if (!v.is_string() && (!v.is_array() || v.empty())) {
      return error(at, "must be a type name or a non-empty array of type names");
    }
    node.type_message = "must be of type ";
    const Json names = v.is_string() ? Json::array({v}) : v;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const auto* name = names[i].get_ptr<const std::string*>();
      const auto* known = name == nullptr ? std::end(kNames)
                                          : std::find_if(std::begin(kNames), std::end(kNames),
                                                         [&](const auto& k) { return k.first == *name; });
      if (known == std::end(kNames)) {
        return error(at, "unknown type " + quote(names[i]) +
                             " (expected null, boolean, object, array, number, string or integer)");
      }
      node.types |= known->second;
      if (i > 0) node.type_message += i + 1 == names.size() ? " or " : ", ";
      node.type_message += *name;
    }
    return Status::ok();
  }

  static Result<Pattern> compile_pattern(const std::string& source, const std::string& at) {
    Pattern pattern;
    pattern.source = source;
    std::wstring wide;
    decode_utf8(source, wide);
    if (auto why = pattern_too_complex(wide)) return error(at, "pattern " + quote(source) + " " + *why);
    try {
      auto flags = std::regex_constants::ECMAScript;
#if defined(__GLIBCXX__)
      // The breadth-first executor: its recursion does not grow with the input.
      // It refuses back-references, which is reported as a compile error.
      flags |= std::regex_constants::__polynomial;
#endif
      pattern.regex = std::wregex(wide, flags);
    } catch (const std::exception& e) {
      return error(at, "pattern " + quote(source) + " is not a supported ECMAScript regular expression (" +
                           e.what() + ")");
    }
    return pattern;
  }

  // Resolves "#<json pointer>" against the root document. Targets that were
  // not compiled as part of the structure (e.g. "#/definitions/x" inside a $ref
  // node's siblings) are compiled now, which may queue further refs.
  Status resolve_refs() {
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      const auto [node, ref] = pending_[i];
      const std::string at = child(where_[node], "$ref");
      if (ref.empty() || ref[0] != '#') {
        return error(at, "only local references starting with '#' are supported, not " + quote(ref));
      }
      std::string pointer;
      for (std::size_t k = 1; k < ref.size(); ++k) {
        if (ref[k] != '%') {
          pointer += ref[k];
          continue;
        }
        const auto hex = [](char c) {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        if (k + 2 >= ref.size()) return error(at, "bad percent-encoding in " + quote(ref));
        const int hi = hex(ref[k + 1]);
        const int lo = hex(ref[k + 2]);
        if (hi < 0 || lo < 0) return error(at, "bad percent-encoding in " + quote(ref));
        pointer += static_cast<char>(hi * 16 + lo);
        k += 2;
      }
      auto target = walk_pointer(pointer);
      if (!target) return error(at, "cannot resolve " + quote(ref) + ": " + target.status().message());
      auto index = compile(**target, pointer, 0);
      if (!index) return index.status();
      nodes_[node].ref = *index;
    }
    return Status::ok();
  }

  Result<const Json*> walk_pointer(const std::string& pointer) const {
    const Json* at = &root_;
    if (pointer.empty()) return at;
    if (pointer[0] != '/') return Status::invalid_argument("a JSON pointer must start with '/'");
    std::size_t pos = 1;
    while (true) {
      const std::size_t end = std::min(pointer.find('/', pos), pointer.size());
      std::string token;
      for (std::size_t k = pos; k < end; ++k) {
        if (pointer[k] != '~') {
          token += pointer[k];
        } else if (k + 1 < end && (pointer[k + 1] == '0' || pointer[k + 1] == '1')) {
          token += pointer[++k] == '0' ? '~' : '/';
        } else {
          return Status::invalid_argument("'~' must be followed by 0 or 1");
        }
      }
      if (at->is_object()) {
        const auto it = at->find(token);
        if (it == at->end()) return Status::invalid_argument("no member " + quote(token));
        at = &*it;
      } else if (at->is_array()) {
        const bool digits = !token.empty() && token.size() <= 18 &&
                            std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                            (token == "0" || token[0] != '0');
        if (!digits || std::stoull(token) >= at->size()) return Status::invalid_argument("no item " + quote(token));
        at = &(*at)[std::stoull(token)];
      } else {
        return Status::invalid_argument(quote(token) + " goes below a " + type_name(*at));
      }
      if (end == pointer.size()) return at;
      pos = end + 1;
    }
  }

  // Edges that apply a schema at the same instance location.
  std::vector<int> in_place(const Node& n) const {
    std::vector<int> out = n.all_of;
    out.insert(out.end(), n.any_of.begin(), n.any_of.end());
    out.insert(out.end(), n.one_of.begin(), n.one_of.end());
    if (n.not_schema >= 0) out.push_back(n.not_schema);
    if (n.ref >= 0) out.push_back(n.ref);
    return out;
  }

  // Iterative depth-first search for a cycle of in-place edges.
  Status check_cycles() const {
    enum : char { kNew, kOnStack, kDone };
    std::vector<char> state(nodes_.size(), kNew);
    std::vector<std::pair<int, std::vector<int>>> stack;
    for (std::size_t start = 0; start < nodes_.size(); ++start) {
      if (state[start] != kNew) continue;
      state[start] = kOnStack;
      stack.emplace_back(static_cast<int>(start), in_place(nodes_[start]));
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next.empty()) {
          state[node] = kDone;
          stack.pop_back();
          continue;
        }
        const int to = next.back();
        next.pop_back();
        if (state[to] == kOnStack) {
          return error(where_[to], "is part of a $ref cycle that never descends into the instance");
        }
        if (state[to] == kNew) {
          state[to] = kOnStack;
          stack.emplace_back(to, in_place(nodes_[to]));
        }
      }
    }
    return Status::ok();
  }

  struct PendingRef {
    int node;
    std::string ref;
  };

  const Json& root_;
  std::vector<Node> nodes_;
  std::vector<std::string> where_;  // schema location of each node, for messages
  std::unordered_map<const Json*, int> by_address_;
  std::vector<PendingRef> pending_;
};

// ---- Validation -----------------------------------------------------------------

struct Segment {
  const std::string* key = nullptr;  // object member, or
  std::size_t index = 0;             // array item when key is null
};

struct Walk {
  std::vector<SchemaViolation>* out;  // null while only testing (anyOf, oneOf, not)
  std::vector<Segment> path;
  std::wstring text;  // scratch for pattern matching
  int depth = 0;
};

std::string pointer_of(const std::vector<Segment>& path) {
  std::string out;
  for (const auto& s : path) {
    out += '/';
    if (s.key != nullptr) {
      append_escaped(out, *s.key);
    } else {
      out += std::to_string(s.index);
    }
  }
  return out;
}

// Orders pointers parent first, then segment by segment: all-digit segments
// (array indexes) by value and before other segments, which go bytewise.
bool pointer_before(const SchemaViolation& x, const SchemaViolation& y) {
  const std::string_view a = x.pointer;
  const std::string_view b = y.pointer;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    const std::size_t ie = std::min(a.find('/', i + 1), a.size());
    const std::size_t je = std::min(b.find('/', j + 1), b.size());
    const std::string_view sa = a.substr(i + 1, ie - i - 1);
    const std::string_view sb = b.substr(j + 1, je - j - 1);
    if (sa != sb) {
      const auto digits = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
      };
      const bool da = digits(sa);
      const bool db = digits(sb);
      if (da != db) return da;
      if (da && sa.size() != sb.size()) return sa.size() < sb.size();
      return sa < sb;
    }
    i = ie;
    j = je;
  }
  return i >= a.size() && j < b.size();
}

// The result of applying one node: whether it matched, and whether to go on
// looking for more violations.
class Outcome {
 public:
  explicit Outcome(Walk& w) : w_(w) {}

  // Records a violation at the current location; true when the caller should
  // stop, because nobody collects violations and the answer is known.
  template <typename Message>
  bool fail(Message&& message) {
    ok_ = false;
    if (w_.out != nullptr) w_.out->push_back({pointer_of(w_.path), message()});
    return w_.out == nullptr;
  }
  // A nested check failed and has recorded its own violations.
  bool nested_failed() {
    ok_ = false;
    return w_.out == nullptr;
  }
  bool ok() const { return ok_; }

 private:
  Walk& w_;
  bool ok_ = true;
};

}  // namespace

std::string SchemaViolation::to_string() const { return (pointer.empty() ? "/" : pointer) + ": " + message; }

struct JsonSchema::Impl {
  std::vector<Node> nodes;
  int root = 0;

  // Applies node `index` to `v`; false when it does not match. With w.out set,
  // every violation is recorded; without, the first one ends the check.
  bool check(int index, const Json& v, Walk& w) const {
    struct DepthGuard {
      int& depth;
      explicit DepthGuard(int& d) : depth(++d) {}
      ~DepthGuard() { --depth; }
      DepthGuard(const DepthGuard&) = delete;
      DepthGuard& operator=(const DepthGuard&) = delete;
    } guard(w.depth);
    Outcome r(w);
    if (w.depth > kMaxValidationDepth) {
      r.fail([] { return "is nested too deeply for the validator (more than " + std::to_string(kMaxValidationDepth) + " levels)"; });
      return false;
    }
    const Node& n = nodes[index];
    if (n.ref >= 0) return check(n.ref, v, w);
    if (n.reject_all) {
      r.fail([] { return std::string("is not allowed here (the schema is false)"); });
      return false;
    }
    if (n.types != 0 && !has_type(n.types, v) && r.fail([&] { return n.type_message + ", not " + type_name(v); })) {
      return false;
    }
    if (n.enum_values &&
        std::none_of(n.enum_values->begin(), n.enum_values->end(), [&](const Json& e) { return json_equal(v, e); }) &&
        r.fail([&] { return n.enum_message; })) {
      return false;
    }
    if (n.const_value && !json_equal(v, *n.const_value) && r.fail([&] { return n.const_message; })) return false;
    const bool go_on = (!v.is_number() || check_number(n, v, r)) &&
                       (!v.is_string() || check_string(n, v.get_ref<const std::string&>(), w, r)) &&
                       (!v.is_array() || check_array(n, v, w, r)) &&
                       (!v.is_object() || check_object(n, v, w, r)) && check_combinators(n, v, w, r);
    return go_on && r.ok();
  }

  // The helpers below return false when the check must stop early.
  static bool check_number(const Node& n, const Json& v, Outcome& r) {
    const auto bound = [&](const std::optional<Json>& limit, auto accept, const char* op) {
      if (!limit || accept(compare_numbers(v, *limit))) return true;
      return !r.fail([&] { return std::string("must be ") + op + " " + quote(*limit); });
    };
    return bound(n.minimum, [](auto c) { return c >= 0; }, ">=") &&
           bound(n.maximum, [](auto c) { return c <= 0; }, "<=") &&
           bound(n.exclusive_minimum, [](auto c) { return c > 0; }, ">") &&
           bound(n.exclusive_maximum, [](auto c) { return c < 0; }, "<");
  }

  static bool check_string(const Node& n, const std::string& s, Walk& w, Outcome& r) {
    if (n.min_length || n.max_length) {
      const std::uint64_t length = count_code_points(s);
      if (n.min_length && length < *n.min_length &&
          r.fail([&] { return "must be at least " + std::to_string(*n.min_length) + " characters long"; })) {
        return false;
      }
      if (n.max_length && length > *n.max_length &&
          r.fail([&] { return "must be at most " + std::to_string(*n.max_length) + " characters long"; })) {
        return false;
      }
    }
    if (n.pattern) {
      decode_utf8(s, w.text);
      if (!pattern_matches(*n.pattern, w.text) &&
          r.fail([&] { return "must match the pattern " + quote(n.pattern->source); })) {
        return false;
      }
    }
    return true;
  }

  bool check_array(const Node& n, const Json& v, Walk& w, Outcome& r) const {
    if (n.min_items && v.size() < *n.min_items &&
        r.fail([&] { return "must have at least " + std::to_string(*n.min_items) + " items"; })) {
      return false;
    }
    if (n.max_items && v.size() > *n.max_items &&
        r.fail([&] { return "must have at most " + std::to_string(*n.max_items) + " items"; })) {
      return false;
    }
    // additionalItems only applies after an array of `items`; `false` there is
    // one violation of the array rather than one per extra item.
    int rest = n.items;
    if (n.tuple) {
      rest = n.additional_items;
      if (is_false(rest)) {
        rest = -1;
        if (v.size() > n.tuple->size() && r.fail([&] {
              return "must have at most " + std::to_string(n.tuple->size()) + " items (additionalItems is false)";
            })) {
          return false;
        }
      }
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      const int schema = n.tuple && i < n.tuple->size() ? (*n.tuple)[i] : rest;
      if (schema < 0) continue;
      w.path.push_back({nullptr, i});
      const bool item_ok = check(schema, v[i], w);
      w.path.pop_back();
      if (!item_ok && r.nested_failed()) return false;
    }
    return true;
  }

  bool check_object(const Node& n, const Json& v, Walk& w, Outcome& r) const {
    for (const auto& name : n.required) {
      if (!v.contains(name) && r.fail([&] { return "required property " + quote(name) + " is missing"; })) {
        return false;
      }
    }
    if (n.properties.empty() && n.pattern_properties.empty() && n.additional_properties < 0) return true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      bool known = false;
      bool member_ok = true;
      w.path.push_back({&key, 0});
      const auto prop = std::lower_bound(n.properties.begin(), n.properties.end(), key,
                                         [](const auto& p, const std::string& k) { return p.first < k; });
      if (prop != n.properties.end() && prop->first == key) {
        known = true;
        member_ok = check(prop->second, *it, w);
      }
      for (const auto& [pattern, schema] : n.pattern_properties) {
        if (!member_ok && w.out == nullptr) break;
        decode_utf8(key, w.text);  // each time: the nested check reuses the buffer
        if (pattern_matches(pattern, w.text)) {
          known = true;
          member_ok = check(schema, *it, w) && member_ok;
        }
      }
      const bool refused = !known && is_false(n.additional_properties);
      if (!known && !refused && n.additional_properties >= 0) member_ok = check(n.additional_properties, *it, w);
      w.path.pop_back();
      if (refused && r.fail([&] { return "property " + quote(key) + " is not allowed"; })) return false;
      if (!member_ok && r.nested_failed()) return false;
    }
    return true;
  }

  bool check_combinators(const Node& n, const Json& v, Walk& w, Outcome& r) const {
    for (const int schema : n.all_of) {
      if (!check(schema, v, w) && r.nested_failed()) return false;
    }
    // Only whether these match matters, so their checks record nothing.
    std::vector<SchemaViolation>* const out = w.out;
    w.out = nullptr;
    const bool any_ok =
        n.any_of.empty() || std::any_of(n.any_of.begin(), n.any_of.end(), [&](int s) { return check(s, v, w); });
    int matched = 0;
    for (const int schema : n.one_of) {
      if (check(schema, v, w)) ++matched;
      if (matched > 1 && out == nullptr) break;  // the exact count only matters for the message
    }
    const bool not_ok = n.not_schema < 0 || !check(n.not_schema, v, w);
    w.out = out;
    if (!any_ok && r.fail([] { return std::string("must match at least one schema of anyOf"); })) return false;
    if (!n.one_of.empty() && matched != 1 &&
        r.fail([&] { return "must match exactly one schema of oneOf (matched " + std::to_string(matched) + ")"; })) {
      return false;
    }
    if (!not_ok && r.fail([] { return std::string("must not match the schema of not"); })) return false;
    return true;
  }

  bool is_false(int index) const { return index >= 0 && nodes[index].reject_all; }
};

JsonSchema::JsonSchema(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonSchema::JsonSchema(JsonSchema&&) noexcept = default;
JsonSchema& JsonSchema::operator=(JsonSchema&&) noexcept = default;
JsonSchema::~JsonSchema() = default;

Result<JsonSchema> JsonSchema::compile(const Json& schema) {
  try {
    auto impl = std::make_unique<Impl>();
    Compiler compiler(schema);
    if (Status s = compiler.run(impl->nodes, impl->root); !s) return s;
    return JsonSchema(std::move(impl));
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("schema could not be compiled: ") + e.what());
  }
}

std::vector<SchemaViolation> JsonSchema::validate(const Json& instance) const {
  std::vector<SchemaViolation> out;
  if (!impl_) {
    out.push_back({"", "the schema was moved away"});
    return out;
  }
  try {
    Walk walk{&out, {}, {}, 0};
    impl_->check(impl_->root, instance, walk);
    std::stable_sort(out.begin(), out.end(), pointer_before);
  } catch (const std::exception& e) {
    out.push_back({"", std::string("could not be validated: ") + e.what()});
  }
  return out;
}

}  // namespace usher
