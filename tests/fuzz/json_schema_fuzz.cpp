// Fuzz target: the JSON Schema validator (engine/src/model/json_schema.h).
// The input is a schema and an instance separated by a line "---":
//
//   {"type": "object", "required": ["seat"]}
//   ---
//   {"seat": 3}
//
// (no separator: the whole input is the schema and also the instance). A
// schema that compiles must validate any instance to a list of violations;
// one that does not must be refused with a message. Never a crash or a throw:
// the instance is a start request's body, straight from the network.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "model/json_schema.h"

namespace {

constexpr std::string_view kSeparator = "\n---\n";

usher::Json parse_or_discarded(std::string_view text) {
  return usher::Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view schema_text = input;
  std::string_view instance_text = input;
  if (auto at = input.find(kSeparator); at != std::string_view::npos) {
    schema_text = input.substr(0, at);
    instance_text = input.substr(at + kSeparator.size());
  }
  usher::Json schema = parse_or_discarded(schema_text);
  if (schema.is_discarded()) return 0;
  auto compiled = usher::JsonSchema::compile(schema);
  if (!compiled.is_ok()) {
    if (compiled.status().message().empty()) std::abort();
    return 0;
  }
  usher::Json instance = parse_or_discarded(instance_text);
  if (instance.is_discarded()) instance = usher::Json(std::string(instance_text));
  for (const auto& v : compiled.value().validate(instance)) {
    if (v.message.empty()) std::abort();
    (void)v.to_string();
  }
  // A compiled schema is moved into the engine's map; it must survive that.
  usher::JsonSchema moved = std::move(compiled.value());
  (void)moved.validate(usher::Json::object());
  return 0;
}
