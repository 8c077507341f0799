// Whether the saga log is taking appends, as the engine sees it.
//
// A failed append (I/O error, full disk, a lock held too long) marks the log
// unhealthy until an append succeeds again. Meanwhile new sagas are refused at
// once with kUnavailable (503 over HTTP) instead of each waiting for a commit
// that fails; the sagas already acknowledged are kept and retried by the
// engine. One start per kProbeInterval is let through as a probe, so an engine
// with no saga in flight still notices the fault clearing; it is refused like
// the others if the log still fails, with nothing written.
//
// Used on the engine thread only; time comes in as an argument, so the rules
// are tested without a clock.
#pragma once

#include <chrono>
#include <string>

#include "usher/status.h"

namespace usher {

class LogHealth {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::seconds kProbeInterval{1};

  // Whether a new saga may be started now: ok while healthy, and for one probe
  // per interval while not.
  Status admit(TimePoint now);

  // The outcome of an append. Only kUnavailable says the log is unwell; an
  // append refused for its own content (a duplicate key) does not. Each
  // returns true when the health changed, for the caller to log it once.
  bool note_failure(const Status& why, TimePoint now);
  bool note_success();

  bool healthy() const { return healthy_; }
  const std::string& fault() const { return fault_; }

 private:
  bool healthy_ = true;
  std::string fault_;             // why the last append failed
  bool probe_in_flight_ = false;  // a start let through while unhealthy, not yet committed
  TimePoint next_probe_;
};

}  // namespace usher
