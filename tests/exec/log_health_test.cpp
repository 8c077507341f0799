// The engine's view of the saga log's health: refuse new sagas while appends
// fail, one probe per interval, healthy again after one success.
#include <doctest/doctest.h>

#include "exec/log_health.h"

using namespace usher;
using std::chrono::milliseconds;

TEST_CASE("a failing log refuses new sagas except one probe per interval, until an append succeeds") {
  LogHealth health;
  const LogHealth::TimePoint t0{};
  CHECK(health.admit(t0).is_ok());

  CHECK(health.note_failure(Status::unavailable("disk I/O error"), t0));  // the change is reported once
  CHECK_FALSE(health.note_failure(Status::unavailable("disk I/O error"), t0));
  CHECK_FALSE(health.healthy());
  Status refused = health.admit(t0 + milliseconds(10));
  CHECK(refused.code() == StatusCode::kUnavailable);
  CHECK(refused.message() == "saga log unavailable: disk I/O error");

  // After the interval one start goes through as a probe; the next waits for it.
  CHECK(health.admit(t0 + LogHealth::kProbeInterval).is_ok());
  CHECK_FALSE(health.admit(t0 + LogHealth::kProbeInterval + milliseconds(1)).is_ok());
  // The probe failed too: the next probe is an interval later.
  health.note_failure(Status::unavailable("database or disk is full"), t0 + LogHealth::kProbeInterval);
  CHECK(health.admit(t0 + LogHealth::kProbeInterval + milliseconds(500)).message() ==
        "saga log unavailable: database or disk is full");
  CHECK(health.admit(t0 + 2 * LogHealth::kProbeInterval).is_ok());

  CHECK(health.note_success());
  CHECK_FALSE(health.note_success());
  CHECK(health.healthy());
  CHECK(health.admit(t0 + 2 * LogHealth::kProbeInterval).is_ok());
}

TEST_CASE("an append refused for its own content says nothing about the log") {
  LogHealth health;
  CHECK_FALSE(health.note_failure(Status::already_exists("duplicate idempotency key"), {}));
  CHECK(health.healthy());
  CHECK(health.admit({}).is_ok());
}
