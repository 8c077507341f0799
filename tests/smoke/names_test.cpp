#include <doctest/doctest.h>

#include "usher/saga.h"

TEST_CASE("saga status names round-trip") {
  for (auto s : {usher::SagaStatus::kRunning, usher::SagaStatus::kStuck})
    CHECK(usher::parse_saga_status(usher::saga_status_name(s)) == s);
  CHECK_FALSE(usher::parse_saga_status("nope").has_value());
}
