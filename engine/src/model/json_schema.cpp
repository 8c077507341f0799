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
//
// Why not a library: valijson 1.0 (Debian 12's libvalijson-dev) was measured as
// a replacement (issue 12, item 7). On the draft-7 suite files of the keywords
// above it passes what this validator passes, but it cannot take input from the
// network: it matches `pattern` with backtracking std::regex on bytes (a 50 KB
// string against ^[A-Za-z0-9_-]+$ overflows the stack; "." is one byte, not
// one character), recurses without a bound (deep instances, deep schemas and
// {"$ref": "#"} crash it), compares numbers as doubles, takes 1.0 for a
// non-integer, refuses `format: 12` or `title: []`, and its messages name
// neither the expected type nor the allowed values.
#include "model/json_schema.h"

#include <algorithm>
#include <string_view>

#include "model/json_schema_tree.h"

namespace usher {

using namespace schema;  // NOLINT: the tree's types and helpers are this file's vocabulary

namespace {

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
    if (Status s = compile_tree(schema, impl->nodes, impl->root); !s) return s;
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