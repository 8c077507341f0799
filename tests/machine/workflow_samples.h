// Inputs and step outputs that fit a workflow, made from its definition: a
// valid input from its `input:` schema, and for each step an output holding
// every key later templates read from it.
#pragma once

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "usher/definition.h"

namespace usher::test {

inline Json sample_for_schema(const Json& schema) {
  if (!schema.is_object()) return "x";
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array() && !e->empty()) return (*e)[0];
  if (auto c = schema.find("const"); c != schema.end()) return *c;
  if (auto e = schema.find("examples"); e != schema.end() && e->is_array() && !e->empty()) return (*e)[0];
  std::string type = schema.value("type", schema.contains("properties") ? "object" : "string");
  if (type == "object") {
    Json out = Json::object();
    if (auto props = schema.find("properties"); props != schema.end() && props->is_object())
      for (const auto& [k, v] : props->items()) out[k] = sample_for_schema(v);
    if (auto req = schema.find("required"); req != schema.end() && req->is_array())
      for (const auto& k : *req)
        if (k.is_string() && !out.contains(k.get<std::string>())) out[k.get<std::string>()] = "sample";
    return out;
  }
  if (type == "array") {
    Json out = Json::array();
    size_t n = schema.value("minItems", 1);
    for (size_t i = 0; i < std::max<size_t>(n, 1); ++i)
      out.push_back(sample_for_schema(schema.value("items", Json::object())));
    return out;
  }
  if (type == "integer" || type == "number") return std::max<int64_t>(schema.value("minimum", 1), 1);
  if (type == "boolean") return true;
  std::string s = "sample";
  size_t min_len = schema.value("minLength", 0);
  while (s.size() < min_len) s += "x";
  return s;
}

inline void collect_output_keys(const ValueTemplate& t, std::map<std::string, std::set<std::string>>& keys);

inline void collect_output_keys(const StringTemplate& t, std::map<std::string, std::set<std::string>>& keys) {
  for (const auto& part : t.parts)
    if (const auto* e = std::get_if<Expression>(&part); e && e->root == Expression::Root::kStepOutput)
      keys[e->step].insert(e->path.empty() ? "" : e->path[0]);
}

inline void collect_output_keys(const ValueTemplate& t, std::map<std::string, std::set<std::string>>& keys) {
  collect_output_keys(t.string, keys);
  for (const auto& [k, v] : t.members) collect_output_keys(v, keys);
  for (const auto& v : t.elements) collect_output_keys(v, keys);
}

// step name -> an output with every key the workflow reads from it.
inline std::map<std::string, Json> sample_outputs(const Definition& def) {
  std::map<std::string, std::set<std::string>> keys;
  for (const auto& step : def.steps) {
    for (const CallSpec* cs : {&step.action, step.compensate ? &*step.compensate : nullptr}) {
      if (!cs) continue;
      collect_output_keys(cs->with, keys);
      if (cs->http) collect_output_keys(cs->http->path, keys);
    }
  }
  std::map<std::string, Json> out;
  for (const auto& step : def.steps) {
    Json o = Json::object();
    for (const auto& k : keys[step.name])
      if (!k.empty()) o[k] = step.name + "-" + k;
    out[step.name] = o;
  }
  return out;
}

inline std::vector<DefinitionPtr> shipped_workflows() {
  DirectoryLoad loaded = load_definition_dir(std::string(USHER_SOURCE_DIR) + "/workflows");
  for (const auto& d : loaded.diagnostics) MESSAGE(d.to_string());
  REQUIRE(loaded.diagnostics.empty());
  REQUIRE(loaded.definitions.size() >= 3);
  return loaded.definitions;
}

}  // namespace usher::test
