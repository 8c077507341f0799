#include "model/input_references.h"

#include <algorithm>
#include <string_view>

#include "model/suggest.h"

namespace usher {
namespace {

// Keywords that can admit a key this check cannot see (a pattern, a branch of
// a combinator, a dependency): where one appears, the check stops.
constexpr std::string_view kOpaqueKeywords[] = {"patternProperties", "allOf", "anyOf", "oneOf",
                                               "if",                "then",  "else",  "dependencies"};

// $refs followed in a row before giving up; the schema compiler has already
// refused cycles, this only bounds the walk.
constexpr int kMaxRefHops = 32;

bool is_index(std::string_view s) {
  return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The schema a local "#/a/b" reference points at, or nullptr. Percent-encoded
// references are left alone (the check stops rather than guess).
const Json* resolve_ref(const Json& root, std::string_view ref) {
  if (ref.empty() || ref[0] != '#' || ref.find('%') != std::string_view::npos) return nullptr;
  const Json* at = &root;
  std::string_view rest = ref.substr(1);
  if (rest.empty()) return at;
  if (rest[0] != '/') return nullptr;
  rest.remove_prefix(1);
  while (true) {
    const size_t slash = rest.find('/');
    std::string_view raw = rest.substr(0, slash);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token += raw[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        token += raw[i];
      }
    }
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array() && is_index(token) && std::stoul(token) < at->size()) {
      at = &(*at)[std::stoul(token)];
    } else {
      return nullptr;
    }
    if (slash == std::string_view::npos) return at;
    rest.remove_prefix(slash + 1);
  }
}

// `at` with its $refs followed, or nullptr where one cannot be.
const Json* follow_refs(const Json& root, const Json* at) {
  for (int hops = 0; at != nullptr && at->is_object(); ++hops) {
    auto ref = at->find("$ref");
    if (ref == at->end()) return at;
    if (!ref->is_string() || hops == kMaxRefHops) return nullptr;
    at = resolve_ref(root, ref->get_ref<const std::string&>());
  }
  return at;
}

bool says_false(const Json& j) { return j.is_boolean() && !j.get<bool>(); }

}  // namespace

std::optional<std::string> undeclared_input_property(const Json& schema, const std::vector<std::string>& path) {
  const Json* at = &schema;
  std::string walked = "input";
  for (const std::string& key : path) {
    at = follow_refs(schema, at);
    if (at == nullptr || !at->is_object()) return std::nullopt;
    for (std::string_view keyword : kOpaqueKeywords)
      if (at->contains(keyword)) return std::nullopt;
    auto props = at->find("properties");
    if (props != at->end() && props->is_object()) {
      if (auto p = props->find(key); p != props->end()) {
        at = &*p;
        walked += "." + key;
        continue;
      }
      std::vector<std::string> names;
      for (const auto& [name, _] : props->items()) names.push_back(name);
      if (auto required = at->find("required"); required != at->end() && required->is_array()) {
        for (const Json& name : *required) {
          if (!name.is_string()) continue;
          if (name.get_ref<const std::string&>() == key) return std::nullopt;  // declared, with no schema of its own
          if (std::find(names.begin(), names.end(), name.get_ref<const std::string&>()) == names.end())
            names.push_back(name.get<std::string>());
        }
      }
      if (auto extra = at->find("additionalProperties"); extra != at->end() && !says_false(*extra))
        return std::nullopt;  // other keys are expected: the schema says so
      return "the input schema declares no property \"" + key + "\"" + (walked == "input" ? "" : " in " + walked) +
             did_you_mean(key, names);
    }
    auto items = at->find("items");
    if (items == at->end() || !is_index(key)) return std::nullopt;
    if (items->is_array()) {
      const size_t index = std::stoul(key);
      if (index >= items->size()) return std::nullopt;
      at = &(*items)[index];
    } else {
      at = &*items;
    }
    walked += "." + key;
  }
  return std::nullopt;
}

}  // namespace usher
