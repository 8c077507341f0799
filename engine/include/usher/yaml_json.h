// YAML text to JSON, with the same rules the workflow loader uses for `with`
// and `input`: plain scalars are typed by the YAML 1.2 core schema (null,
// true/false, integers, floats), quoted and block scalars are always strings.
// Used by tests (to check shipped workflows against schemas/workflow.schema.json)
// and by anything else that reads YAML configuration.
#pragma once

#include <string_view>

#include "usher/definition.h"
#include "usher/status.h"

namespace usher {

// One YAML document as JSON. kInvalidArgument with "line:col: message" for a
// syntax error, a duplicate key, a non-string key, .inf/.nan, or input nested
// or aliased beyond the loader's limits.
Result<Json> yaml_to_json(std::string_view text);

}  // namespace usher
