// The operator actions of the trigger API (docs/semantics.md (operator actions)):
//
//   POST /v1/sagas/{id}/cancel     {"note"?}
//   POST /v1/sagas/{id}/retry      {"note"?}
//   POST /v1/sagas/{id}/resolve    {"step", "outcome": "succeeded"|"failed", "output"?: {…}, "note"}
//   POST /v1/sagas/{id}/terminate  {"reason"}
//
// Each records who acted: the actor is derived from the bearer token that
// was presented, "token:" and the first 8 hex digits of its SHA-256 (enough
// to tell which token acted, e.g. across a rotation, and useless to guess
// it from), or "anonymous" on a server without a token.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "usher/engine.h"

namespace usher::api {

inline constexpr const char* kAnonymousActor = "anonymous";

// "token:1a2b3c4d" for `token`.
std::string token_actor(std::string_view token);

bool is_operator_action(std::string_view name);

// One parsed action, run on a worker thread against the engine.
struct OperatorActionCall {
  std::function<Result<Json>(Engine&, const std::string& saga_id)> run;
};

// Reads the body of action `name` (is_operator_action). kInvalidArgument
// names what is wrong: an unknown field, a missing note, a bad outcome.
Result<OperatorActionCall> parse_operator_action(std::string_view name, const Json& body, const std::string& actor);

}  // namespace usher::api
