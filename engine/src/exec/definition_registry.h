// The workflows an engine can start, by name, each with its compiled input
// schema. The one place a start's input is checked against its schema.
// Thread-safe: read from any caller's thread, written by Engine::load().
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/json_schema.h"
#include "store/saga_store.h"
#include "usher/definition.h"

namespace usher {

class DefinitionRegistry {
 public:
  explicit DefinitionRegistry(SagaStore& store) : store_(store) {}

  // Compiles the definition's input schema, stores its source in the log by
  // hash (so sagas started with it can be read back after it is replaced),
  // then makes it startable by name.
  Status load(DefinitionPtr def);

  // The definition `workflow` starts with, after checking `input` against its
  // schema: kNotFound, or kInvalidArgument with every violation
  // (Status::violations(); the message lists them as "pointer: problem").
  Result<DefinitionPtr> admit(const std::string& workflow, const Json& input) const;

  DefinitionPtr find(const std::string& workflow) const;
  std::vector<DefinitionPtr> all() const;  // by name

 private:
  struct Loaded {
    DefinitionPtr def;
    std::shared_ptr<const JsonSchema> schema;  // null when the workflow has no `input:`
  };

  SagaStore& store_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Loaded> by_name_;
};

}  // namespace usher
