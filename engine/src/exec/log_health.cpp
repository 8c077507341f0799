#include "exec/log_health.h"

namespace usher {

Status LogHealth::admit(TimePoint now) {
  if (healthy_) return Status::ok();
  if (probe_in_flight_ || now < next_probe_) return Status::unavailable("saga log unavailable: " + fault_);
  probe_in_flight_ = true;
  next_probe_ = now + kProbeInterval;
  return Status::ok();
}

bool LogHealth::note_failure(const Status& why, TimePoint now) {
  probe_in_flight_ = false;
  if (why.code() != StatusCode::kUnavailable) return false;
  fault_ = why.message();
  if (!healthy_) return false;
  healthy_ = false;
  next_probe_ = now + kProbeInterval;
  return true;
}

bool LogHealth::note_success() {
  probe_in_flight_ = false;
  if (healthy_) return false;
  healthy_ = true;
  return true;
}

}  // namespace usher
