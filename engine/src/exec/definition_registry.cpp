#include "exec/definition_registry.h"

#include <algorithm>
#include <mutex>

namespace usher {

Status DefinitionRegistry::load(DefinitionPtr def) {
  if (!def) return Status::invalid_argument("no definition");
  std::shared_ptr<const JsonSchema> schema;
  if (def->input_schema) {
    auto compiled = JsonSchema::compile(*def->input_schema);
    if (!compiled.is_ok()) return Status::invalid_argument(def->name + ": input schema: " + compiled.status().message());
    schema = std::make_shared<const JsonSchema>(std::move(compiled.value()));
  }
  if (Status stored = store_.store_definition(def->hash, def->name, def->version, def->source); !stored.is_ok())
    return stored;
  const std::string name = def->name;
  std::unique_lock lock(mu_);
  by_name_[name] = Loaded{std::move(def), std::move(schema)};
  return Status::ok();
}

Result<DefinitionPtr> DefinitionRegistry::admit(const std::string& workflow, const Json& input) const {
  Loaded loaded;
  {
    std::shared_lock lock(mu_);
    auto it = by_name_.find(workflow);
    if (it == by_name_.end()) return Status::not_found("workflow \"" + workflow + "\" is not loaded");
    loaded = it->second;
  }
  if (!loaded.schema) return loaded.def;
  std::vector<SchemaViolation> found = loaded.schema->validate(input);
  if (found.empty()) return loaded.def;
  std::string message = "input does not match the schema of \"" + workflow + "\":";
  std::vector<Violation> violations;
  violations.reserve(found.size());
  for (auto& v : found) {
    message += "\n" + v.to_string();
    violations.push_back({std::move(v.pointer), std::move(v.message)});
  }
  return Status::invalid_input(std::move(message), std::move(violations));
}

DefinitionPtr DefinitionRegistry::find(const std::string& workflow) const {
  std::shared_lock lock(mu_);
  auto it = by_name_.find(workflow);
  return it == by_name_.end() ? nullptr : it->second.def;
}

std::vector<DefinitionPtr> DefinitionRegistry::all() const {
  std::vector<DefinitionPtr> out;
  {
    std::shared_lock lock(mu_);
    for (const auto& [name, loaded] : by_name_) out.push_back(loaded.def);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
  return out;
}

}  // namespace usher
