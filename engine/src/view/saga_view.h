// How sagas and events look in the API, the CLI's --json and the embedding API
// (the JSON documented in usher/inspect.h).
#pragma once

#include "machine/saga_state.h"
#include "usher/definition.h"
#include "usher/saga.h"

namespace usher {

Json saga_to_json(const Definition& def, const SagaState& state);
Json event_to_json(const Event& event);
Json events_to_json(const std::vector<Event>& events);

}  // namespace usher
