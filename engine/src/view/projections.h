// Projections of a saga's state that the executor hands on: the `sagas` row the
// store keeps beside the events, and the transitions reported to
// EngineOptions::on_transition (logs and metrics).
#pragma once

#include <vector>

#include "machine/saga_state.h"
#include "store/saga_store.h"
#include "usher/engine.h"

namespace usher {

// The `sagas` row of a saga as its state stands (prior_seq is left 0: the
// executor knows how many events the append adds).
SagaRow saga_row(const Definition& def, const SagaState& state);

// One TransitionInfo per event, as of `state` (the state after the events).
std::vector<TransitionInfo> transitions(const Definition& def, const SagaState& state,
                                        const std::vector<Event>& events);

}  // namespace usher
