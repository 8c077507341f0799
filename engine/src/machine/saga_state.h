// The state of one saga: the fold of its events (machine.h). Plain
// data; nothing here knows about threads, clocks or storage.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "usher/adapter.h"
#include "usher/definition.h"
#include "usher/saga.h"

namespace usher {

// One side of a step: its action or its compensation.
struct CallState {
  uint32_t attempts = 0;      // attempts scheduled so far (the attempt number of the latest)
  uint32_t budget_base = 0;   // attempts made before the last operator retry; the retry
                              // policy counts attempts from here
  bool in_flight = false;     // the latest attempt was scheduled and has no result yet
  int64_t scheduled_at = 0;   // µs, when the latest attempt was scheduled
  int64_t scheduled_seq = 0;  // seq of the latest StepScheduled: the cause of its result
  int64_t attempt_deadline = 0;  // µs, when the latest attempt times out
  int64_t retry_at = 0;       // µs, when the next attempt is due; 0 = no retry pending
  int64_t started_at = 0;     // µs, first attempt
  int64_t finished_at = 0;    // µs, latest result
  std::optional<Outcome> last_outcome;  // of the latest attempt, sent or not
  // Some attempt reached the service, or may have (docs/semantics.md: an
  // attempt that never left did not happen).
  bool reached = false;
  std::optional<Outcome> last_reached_outcome;  // of the latest attempt that reached it
  // An attempt timed out, broke after it was sent, or was in flight at a
  // restart: the call may have happened, whatever later attempts say. Never
  // cleared ("What may have happened stays so").
  bool may_have_happened = false;
  // Not part of the fold, like SagaState::unredacted_input: the attempt in
  // flight was in flight when the process stopped (set by resume()); its
  // result then records that it may have happened, unless it is a success.
  bool resumed = false;
  bool succeeded = false;
  std::string error;          // of the latest failed attempt
  // Attempts made under the current retry budget.
  uint32_t budget_used() const { return attempts - budget_base; }
};

struct StepState {
  CallState action;
  CallState compensation;
  bool compensation_started = false;  // listed in CompensationStarted and reached
  Json output;                        // the action's reply; null until it succeeded
  bool compensation_gave_up = false;  // the compensation failed for good (saga stuck)
};

struct SagaState {
  std::string id;
  std::string workflow;
  int64_t version = 0;
  std::string definition_hash;
  SagaStatus status = SagaStatus::kRunning;
  Json input;  // as logged: every `redact:` pointer holds "[redacted]"
  // The start payload with its secrets, held in memory only: set when a saga
  // whose definition redacts is started in this process, absent after a
  // restart. The one part of the state that is not the fold of its events.
  std::shared_ptr<const Json> unredacted_input;
  std::string idempotency_key;
  std::string correlation_id;
  std::string traceparent;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::optional<int64_t> deadline;  // µs; the saga deadline, until the pivot succeeds
  int64_t last_seq = 0;

  std::vector<StepState> steps;       // one per step of the definition
  size_t current = 0;                 // the forward step being run (index)
  bool pivot_sent = false;            // an attempt of the pivot was scheduled
  bool pivot_succeeded = false;
  bool cancel_requested = false;

  std::vector<size_t> compensation_plan;  // step indexes, in the order they are compensated
  size_t compensation_cursor = 0;         // index into compensation_plan

  std::optional<size_t> stuck_step;   // what an operator retry resumes
  CallKind stuck_kind = CallKind::kAction;
  std::string last_error;

  bool started() const { return !id.empty(); }
  CallState& call(size_t step, CallKind kind) {
    return kind == CallKind::kAction ? steps[step].action : steps[step].compensation;
  }
  const CallState& call(size_t step, CallKind kind) const {
    return kind == CallKind::kAction ? steps[step].action : steps[step].compensation;
  }
};

// True when the action of a step has to be undone if the saga compensates:
// it succeeded, may have happened, or reached the service and did not end in
// a definite business failure (docs/semantics.md).
bool needs_undo(const CallState& action);

// The status a step shows in the API (docs/api.md).
StepStatus step_status(const SagaState& state, size_t step);

}  // namespace usher
