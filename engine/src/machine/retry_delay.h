// How long a call waits before its next attempt.
#pragma once

#include <cstdint>
#include <optional>

#include "usher/definition.h"

namespace usher {

// Delay before attempt number `attempts_made + 1` under `policy`, with full
// jitter: uniform in [0, min(max_backoff, backoff * multiplier^(n-1))] for the
// n-th retry; at least `retry_after` when a service asked for it. `jitter` is
// the random part, in [0, 1), drawn by the executor (the machine draws none).
Millis retry_delay(const RetryPolicy& policy, uint32_t attempts_made, double jitter,
                   std::optional<Millis> retry_after);

}  // namespace usher
