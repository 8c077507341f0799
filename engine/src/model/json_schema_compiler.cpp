// Compiles a JSON Schema document into the flat node vector of
// json_schema_tree.h: checks every supported keyword, compiles patterns,
// resolves local $refs and refuses $ref cycles that never descend into the
// instance.
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "model/json_schema_tree.h"

namespace usher::schema {
namespace {

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


}  // namespace

Status compile_tree(const Json& root, std::vector<Node>& nodes, int& root_index) {
  Compiler compiler(root);
  return compiler.run(nodes, root_index);
}

}  // namespace usher::schema
