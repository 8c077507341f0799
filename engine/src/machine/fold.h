// The fold: a saga's state from its events.
#pragma once

#include <vector>

#include "machine/saga_state.h"
#include "usher/saga.h"
#include "usher/status.h"

namespace usher {

// Applies one logged event to the state: the fold step used by decide(),
// recovery, the views and `show --at`. Events must come in seq order.
void apply(const Definition& def, SagaState& state, const Event& event);

// Folds a whole event list. Refuses (kDataLoss) a list that does not start
// with SagaStarted at seq 1 or skips a seq: a saga with a hole in its log is
// not a saga usher can vouch for.
Result<SagaState> fold(const Definition& def, const std::vector<Event>& events);

}  // namespace usher
