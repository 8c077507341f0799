// Saga IDs are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random
// bits, so IDs sort by start time and listing by ID lists by age.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace usher {

class SagaIdGenerator {
 public:
  explicit SagaIdGenerator(uint64_t seed);
  // Monotonic within one generator: two IDs in the same millisecond still
  // sort in the order they were made (RFC 9562 method 1, a 12-bit counter in rand_a).
  std::string next(int64_t now_us);

 private:
  std::mt19937_64 rng_;
  int64_t last_ms_ = -1;
  uint16_t counter_ = 0;
};

}  // namespace usher
