// The state machine's invariants (listed in machine.h), as assertions.
#pragma once

#include "machine/saga_state.h"

namespace usher {

// Asserts every invariant of machine.h on a started saga. decide() calls it
// after each decision in debug builds; the property tests call it after every
// step of their random runs.
void check_invariants(const Definition& def, const SagaState& state);

}  // namespace usher
