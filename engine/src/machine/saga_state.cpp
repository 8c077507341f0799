#include "machine/saga_state.h"

namespace usher {

bool needs_undo(const CallState& a) {
  if (a.succeeded || a.may_have_happened) return true;
  return a.reached && a.last_reached_outcome != Outcome::kFailed;
}

StepStatus step_status(const SagaState& state, size_t i) {
  const StepState& s = state.steps[i];
  if (s.compensation.succeeded) return StepStatus::kCompensated;
  if (s.compensation_started) return StepStatus::kCompensating;
  const CallState& a = s.action;
  if (a.succeeded) return StepStatus::kSucceeded;
  if (a.in_flight || a.retry_at != 0) return StepStatus::kRunning;
  if (!a.last_outcome) return StepStatus::kPending;
  if (a.may_have_happened) return StepStatus::kUnknown;
  return StepStatus::kFailed;
}

}  // namespace usher
