#include "machine/invariants.h"

#include <cassert>

namespace usher {

void check_invariants(const Definition& def, const SagaState& s) {
  (void)def;
  size_t in_flight = 0;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    for (CallKind kind : {CallKind::kAction, CallKind::kCompensate}) {
      const CallState& c = s.call(i, kind);
      // 2: a retry is pending only between attempts.
      assert(!(c.in_flight && c.retry_at != 0));
      if (c.in_flight) ++in_flight;
    }
  }
  // 1: one call at a time; none once settled (a cancel waits for the in-flight one).
  assert(in_flight <= 1);
  if (is_terminal(s.status) || s.status == SagaStatus::kStuck) assert(in_flight == 0);
  if (s.status == SagaStatus::kRunning) {
    // 3: steps before `current` all succeeded.
    for (size_t i = 0; i < s.current; ++i) assert(s.steps[i].action.succeeded);
  }
  if (s.status == SagaStatus::kCompensating) {
    // 4: nothing forward is active.
    for ([[maybe_unused]] const auto& st : s.steps) assert(!st.action.in_flight && st.action.retry_at == 0);
    // 6: a saga past its pivot never compensates.
    assert(!s.pivot_succeeded);
  }
  // 5: the plan runs last step first, each step once.
  for (size_t k = 1; k < s.compensation_plan.size(); ++k)
    assert(s.compensation_plan[k - 1] > s.compensation_plan[k]);
  if (s.status == SagaStatus::kCompleted)  // 7
    for ([[maybe_unused]] const auto& st : s.steps) assert(st.action.succeeded);
  if (s.status == SagaStatus::kCompensated)  // 7
    for ([[maybe_unused]] size_t i : s.compensation_plan) assert(s.steps[i].compensation.succeeded);
}

}  // namespace usher
