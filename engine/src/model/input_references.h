// `${input.…}` references checked against the workflow's `input:` schema at
// load time, so that a typo such as `${input.eventID}` for a declared
// `eventId` is a load error instead of a failure of every saga.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "usher/definition.h"

namespace usher {

// Why `path` (the keys after `input`) names a property that `schema` does not
// declare, or nullopt when it is declared or the schema does not say.
//
// The rule, level by level from the schema's root:
//  - a schema with `properties` declares those names and the names in its
//    `required`; any other name is undeclared, whether or not
//    `additionalProperties: false` is written (without it the start payload
//    may carry the key, but a reference to a key the schema never names is
//    almost always a typo). The message has a did-you-mean over the declared
//    names: `the input schema declares no property "eventID" (did you mean
//    "eventId"?)`, plus ` in input.customer` below the root.
//  - a declared name is followed into its own schema; a name declared only by
//    `required` has none, so the check stops there.
//  - an array index (digits) is followed into `items` (one schema, or the
//    index's schema of a tuple).
//  - a local `$ref` ("#", "#/definitions/x") is followed.
//  - the check stops, accepting the rest of the path, where the schema says
//    nothing it can read without guessing: no `properties`, an
//    `additionalProperties` other than false (other keys are expected),
//    `patternProperties`, `allOf`/`anyOf`/`oneOf`, `if`/`then`/`else`,
//    `dependencies`, a boolean schema, or a `$ref` it cannot resolve.
std::optional<std::string> undeclared_input_property(const Json& schema, const std::vector<std::string>& path);

}  // namespace usher
