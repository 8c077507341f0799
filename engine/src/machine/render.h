// What a call sends: its request, rendered from the saga, and its idempotency key.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "machine/saga_state.h"
#include "usher/status.h"

namespace usher {

// Renders the request of a call (its `with`, and its `http.path` if any) from
// the saga's input and the outputs of the steps that succeeded. Fails when an
// expression points at a value that is not there, or at a secret (`redact:`)
// this process no longer holds.
Result<std::pair<Json, std::optional<std::string>>> render_request(const Definition& def, const SagaState& state,
                                                                    size_t step, CallKind kind);

// The same request as the log can show it: rendered from the input as logged,
// so a secret reads "[redacted]" wherever the call puts it. For views only;
// it is never what is sent.
Result<std::pair<Json, std::optional<std::string>>> render_logged_request(const Definition& def,
                                                                           const SagaState& state, size_t step,
                                                                           CallKind kind);

// The idempotency key every attempt of a call carries:
// "{sagaId}:{step}:{action|compensate}".
std::string idempotency_key(const std::string& saga_id, const std::string& step, CallKind kind);

}  // namespace usher
