// A small JSON Schema (draft 7) validator for the keywords people use in an
// `input:` block: type, properties, patternProperties, required,
// additionalProperties, enum, const, items, additionalItems, minimum/maximum,
// exclusiveMinimum/exclusiveMaximum, minLength/maxLength, pattern,
// minItems/maxItems, anyOf/oneOf/allOf/not, boolean schemas and local $ref
// ("#", "#/definitions/x", "#/properties/y"). Other keywords are ignored; the
// list is at the top of json_schema.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "usher/definition.h"

namespace usher {

struct SchemaViolation {
  std::string pointer;  // JSON pointer into the instance, "" for the root
  std::string message;  // e.g. "must be >= 1" or "required property \"seat\" is missing"
  std::string to_string() const;  // "/amount: must be >= 1" (root shown as "/")
};

class JsonSchema {
 public:
  // Checks that `schema` is a usable schema (types of keywords, regexes that
  // compile, $refs that resolve) and prepares it. kInvalidArgument says where.
  static Result<JsonSchema> compile(const Json& schema);

  // Every violation, in document order; empty when the instance is valid.
  std::vector<SchemaViolation> validate(const Json& instance) const;

  JsonSchema(JsonSchema&&) noexcept;
  JsonSchema& operator=(JsonSchema&&) noexcept;
  ~JsonSchema();

 private:
  struct Impl;
  explicit JsonSchema(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace usher
