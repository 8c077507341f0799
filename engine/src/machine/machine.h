// The saga state machine: decide(definition, state, input) -> events + commands.
// Pure: no I/O, no clock, no randomness; time and jitter arrive in the Input.
// The build enforces it: the usher_machine target links usher_model and
// nlohmann_json only.
//
// DESIGN NOTES
//
// A saga is the fold of its events. decide() looks at the saga's state and one
// Input (a start, an attempt's result, a timer, a cancel or an operator retry),
// and emits the events that record what follows plus the commands to run once
// those events are durable. It never reads a clock, draws a random number or
// touches I/O: `now` and `jitter` come inside the Input. The same apply() that
// decide() uses to advance the state is used by recovery, inspection and
// `usher show --at`, so every reader of the log sees the same saga.
//
// Statuses:
//
//                 start
//                   |
//                   v         step fails / exhausts retries / deadline / cancel
//   +---------> RUNNING -------------------------------------------+
//   |               |  \                                            |
//   | operator      |   \ pivot outcome unknown, or a step          v
//   | retry of a    |    \ after the pivot gives up          COMPENSATING
//   | forward step  |     v                                   |     |    ^
//   +---------------|-- STUCK <-------------------------------+     |    |
//                   |     |    a compensation fails for good        |    | operator retry
//       every step  |     +---------------------------------------------+  of a compensation
//       succeeded   v     |                                          |
//              COMPLETED  | operator terminate            COMPENSATED (every compensation done)
//                         v
//                    TERMINATED
//
// An operator may also resolve a stuck call: state its outcome, after which
// the saga goes on as if the service had answered so (forward, or on with
// compensation). Resolve and terminate act on a stuck saga only.
//
// Invariants (checked by check_invariants() in debug builds):
//   1. At most one call of a saga is in flight, and none when it is settled:
//      steps run one at a time, forward or backward.
//   2. A call has a retry pending or is in flight, never both.
//   3. RUNNING: the only in-flight or retry-pending call is the action of
//      `current`; every earlier step's action succeeded.
//   4. COMPENSATING: no action is in flight or pending a retry; the only active
//      call is the compensation of compensation_plan[compensation_cursor].
//   5. The compensation plan lists steps in strictly decreasing order, each has a
//      `compensate` block and was sent and did not end in a business failure;
//      so compensations run in exact reverse order, each at most once per plan.
//   6. Once the pivot succeeded, the saga never compensates: the plan is empty
//      of steps before it for good (cancel and the deadline are refused).
//   7. COMPLETED: every step's action succeeded. COMPENSATED: every planned
//      compensation succeeded. TERMINATED: nothing in flight or pending, for
//      good (invariant 1 and no retry_at).
//
// Transitions (input -> events; function):
//   Start                    -> SagaStarted, StepScheduled(first)         on_start
//   Result ok (action)       -> StepSucceeded, StepScheduled(next) | SagaCompleted
//                               | CompensationStarted (cancel was waiting) on_result
//   Result failed (action)   -> StepFailed, CompensationStarted | SagaStuck  on_result, give_up_forward
//   Result transient/timeout -> StepFailed, RetryScheduled | as failed     on_result
//   Result ok (compensation) -> StepSucceeded, StepScheduled(next) | SagaCompensated
//   Result failed (comp.)    -> StepFailed, SagaStuck
//   Result transient (comp.) -> StepFailed, RetryScheduled | SagaStuck
//   Timer retry              -> StepScheduled(next attempt)                on_timer
//   Timer attempt timeout    -> as Result timeout                          on_timer
//   Timer deadline           -> CompensationStarted | SagaStuck (pivot may have happened);
//                               nothing while an attempt is in flight (its result decides)  on_deadline
//   Log refused              -> SagaStuck                                   on(LogRefusedInput)
//   Cancel                   -> CancelRequested [, CompensationStarted]    on_cancel
//   Operator retry           -> OperatorRetried, StepScheduled             on(OperatorRetryInput)
//   Operator resolve, ok     -> OperatorResolved, then as Result ok        on(OperatorResolveInput)
//   Operator resolve, failed -> OperatorResolved, CompensationStarted (an action before the pivot only)
//   Operator terminate       -> SagaTerminated                             on(TerminateInput)
//
// Uncertain outcomes (docs/semantics.md; also docs/semantics.md):
//   - Each call keeps what its attempts said, not only the last: whether any
//     reached the service (`reached`), the outcome of the latest that did, and
//     whether any may have happened (`may_have_happened`: it timed out, broke
//     after sending, or was in flight at a restart). That flag is never
//     cleared, so a 503 or a 409 after a timeout cannot erase the doubt.
//   - A step is compensated when its action succeeded, may have happened, or
//     reached the service and did not end in a definite business failure
//     (needs_undo). A step none of whose attempts left is not.
//   - A pivot that may have happened and then gives up makes the saga STUCK,
//     never compensated: the ticket may exist.
//   - The saga deadline and a cancel never cut an attempt short: the attempt
//     in flight is awaited (its answer or its own timeout), not retried, and
//     only then does compensation start, so a compensation never overtakes its
//     own action at the service and is rendered with the action's real output.
//
// Choices the semantics leave open (also in docs/semantics.md):
//   - A step whose request cannot be rendered (an expression points at a value
//     that is not there) fails as a business failure without being sent
//     (StepFailed with "sent": false); what earlier attempts said still counts.
//   - Text from services (errors, notes) is stored as valid UTF-8 of at most
//     512 bytes (valid_utf8), whatever the adapter passed in.
//   - A compensation refused with a business failure makes the saga STUCK at
//     once: retrying a refusal will not change it, an operator must look.
//   - Resolve is refused where the stated outcome would not move the saga:
//     "failed" for a compensation (it would be stuck again) and for an action
//     the saga cannot go back from (a retriable step, or any step once the
//     pivot succeeded). An action resolved "failed" is a definite business
//     failure: it is not compensated, whatever its attempts said before (the
//     operator's word is the one thing that clears may_have_happened).
//   - Secrets (`redact:`) are logged as "[redacted]"; the real values live in
//     SagaState::unredacted_input, in memory only. After a restart a call that
//     reads one cannot be rendered, so it fails as above; an attempt of such a
//     call that was in flight at the crash cannot be sent again either, so its
//     outcome is unknown: recovery times it out at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "machine/fold.h"
#include "machine/saga_state.h"
#include "usher/adapter.h"
#include "usher/definition.h"
#include "usher/event_data.h"
#include "usher/saga.h"

namespace usher {

// ---- Inputs: things that happen to a saga ----------------------------------
struct StartInput {
  std::string saga_id;
  Json input;
  std::string idempotency_key;
  std::string correlation_id;
  std::string traceparent;
};

// The result of one attempt, as an adapter reported it.
struct ResultInput {
  size_t step = 0;
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 0;
  StepResult result;
};

enum class TimerKind { kRetry, kAttemptTimeout, kDeadline };
const char* timer_kind_name(TimerKind k);

struct TimerInput {
  TimerKind kind = TimerKind::kRetry;
  size_t step = 0;                     // kRetry, kAttemptTimeout
  CallKind call = CallKind::kAction;   // kRetry, kAttemptTimeout
  uint32_t attempt = 0;                // kRetry: the attempt due; kAttemptTimeout: the one timing out
};

// Operator actions (docs/semantics.md (operator actions)); `by` is recorded in their event.
struct CancelInput {
  OperatorNote by;
};
struct OperatorRetryInput {
  OperatorNote by;
};
// States the outcome of the stuck call of step `step` (by name).
struct OperatorResolveInput {
  std::string step;
  bool succeeded = true;
  Json output = Json::object();  // the action's output when it succeeded
  OperatorNote by;
};
struct TerminateInput {
  std::string reason;
  std::string actor;
};

// The saga's own events could not be written for a reason that is about
// them, not the log (a bug): stop it as stuck with the reason, so it waits for
// an operator instead of resending its call in a loop.
struct LogRefusedInput {
  std::string reason;
};

struct Input {
  int64_t now = 0;      // µs since epoch
  double jitter = 0.5;  // uniform in [0, 1): the random part of a retry delay
  std::variant<StartInput, ResultInput, TimerInput, CancelInput, OperatorRetryInput, OperatorResolveInput,
               TerminateInput, LogRefusedInput>
      what;
};

// ---- Commands: what the executor does once the events are durable ---------
struct DispatchCommand {
  size_t step = 0;
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 1;
  Json body;                               // the rendered `with`
  std::optional<std::string> http_path;    // rendered `http.path`, if the call has one
  // The attempt times out its call's `timeout` after it is sent: the executor
  // arms that timer when the request leaves, not when it was decided.
};

struct TimerCommand {
  TimerKind kind = TimerKind::kRetry;
  size_t step = 0;
  CallKind call = CallKind::kAction;
  uint32_t attempt = 0;
  int64_t at = 0;  // µs
};

// The saga reached completed, compensated or stuck: tell whoever waits.
struct SettledCommand {
  SagaStatus status = SagaStatus::kCompleted;
};

using Command = std::variant<DispatchCommand, TimerCommand, SettledCommand>;

struct Decision {
  std::vector<Event> events;      // to append, in order; already applied to the state
  std::vector<Command> commands;  // to run once `events` are durable
  // Set when the input was refused (cancel after the pivot, retry of a saga that
  // is not stuck, start of an existing saga); `events` and `commands` are empty.
  std::optional<Status> refused;
  // Set when the input was stale (a late result, a timer for a superseded
  // attempt) and changed nothing; says why, for the log.
  std::string ignored;
};

// Decides what `input` means for the saga. Applies the events it emits to
// `state` as it emits them, so afterwards state == fold(every event so far).
// Definition must be the one the saga started with.
Decision decide(const Definition& def, SagaState& state, const Input& input);

// What must be running for a saga loaded from the log (after a restart or a
// reload): the attempt in flight is sent again (same attempt number and
// idempotency key), pending retry and deadline timers are armed again; settled
// for stuck sagas. Marks the call in flight as resumed (CallState::resumed):
// it may have been sent before, so its outcome can no longer be "never left".
std::vector<Command> resume(const Definition& def, SagaState& state, int64_t now);

}  // namespace usher
