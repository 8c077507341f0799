// How sagas and events look in the API, the CLI's --json and the embedding API
// (the JSON documented in usher/inspect.h).
#pragma once

#include "machine/saga_state.h"
#include "usher/definition.h"
#include "usher/saga.h"

namespace usher {

Json saga_to_json(const Definition& def, const SagaState& state);
// saga_to_json() with, on each call that has been sent (a step's and its
// compensation's), the `request` it sends: method and URL, topic or
// operation, idempotency key and body, rendered from the logged input, so a
// secret reads "[redacted]"; null for a call not sent yet. What one saga's
// page shows (GET /v1/sagas/{id}, operator actions, `usher show`). Lists and
// the answers of starts leave it out: rendering every call is work the engine
// thread need not do for them.
Json saga_detail_json(const Definition& def, const SagaState& state);
Json event_to_json(const Event& event);
Json events_to_json(const std::vector<Event>& events);

}  // namespace usher
