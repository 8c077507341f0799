#include "machine/retry_delay.h"

#include <algorithm>
#include <cmath>

namespace usher {

Millis retry_delay(const RetryPolicy& policy, uint32_t attempts_made, double jitter,
                   std::optional<Millis> retry_after) {
  // attempts_made >= 1; the first retry waits up to `backoff`.
  double ceiling = static_cast<double>(policy.backoff.count()) *
                   std::pow(std::max(policy.multiplier, 1.0), static_cast<double>(attempts_made - 1));
  ceiling = std::min(ceiling, static_cast<double>(policy.max_backoff.count()));
  if (!std::isfinite(ceiling) || ceiling < 0) ceiling = static_cast<double>(policy.max_backoff.count());
  jitter = std::clamp(jitter, 0.0, 1.0);
  auto delay = Millis(static_cast<int64_t>(ceiling * jitter));
  if (retry_after && *retry_after > delay) delay = *retry_after;
  return delay;
}

}  // namespace usher
