// What must be running for a saga read back from the log.

#include "machine/machine.h"
#include "machine/render.h"

namespace usher {

std::vector<Command> resume(const Definition& def, SagaState& s, int64_t now) {
  std::vector<Command> out;
  if (!s.started()) return out;
  if (s.status == SagaStatus::kStuck) {
    out.push_back(SettledCommand{SagaStatus::kStuck});
    return out;
  }
  if (is_terminal(s.status)) return out;
  if (s.status == SagaStatus::kRunning && s.deadline && !s.pivot_succeeded)
    out.push_back(TimerCommand{TimerKind::kDeadline, 0, CallKind::kAction, 0, *s.deadline});
  for (size_t i = 0; i < s.steps.size(); ++i) {
    for (CallKind kind : {CallKind::kAction, CallKind::kCompensate}) {
      CallState& c = s.call(i, kind);
      if (c.retry_at != 0) out.push_back(TimerCommand{TimerKind::kRetry, i, kind, c.attempts + 1, c.retry_at});
      if (!c.in_flight) continue;
      c.resumed = true;
      auto rendered = render_request(def, s, i, kind);
      if (!rendered.is_ok()) {
        // It rendered when it was scheduled, so a secret it read was lost in a
        // restart. The attempt may have been sent before the crash: its
        // outcome is unknown, as if it had timed out now.
        out.push_back(TimerCommand{TimerKind::kAttemptTimeout, i, kind, c.attempts, now});
        continue;
      }
      out.push_back(DispatchCommand{i, kind, c.attempts, std::move(rendered->first), std::move(rendered->second)});
    }
  }
  return out;
}

}  // namespace usher
