// The saga state machine: decide(definition, state, input) -> events + commands.
// Pure: no I/O, no clock, no randomness; time and jitter arrive in the Input.
// See state_machine.cpp for the design notes, invariants and transitions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/saga_state.h"
#include "usher/adapter.h"
#include "usher/definition.h"
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

struct CancelInput {};
struct OperatorRetryInput {};

// The saga's own events could not be written for a reason that is about
// them, not the log (a bug): stop it as stuck with the reason, so it waits for
// an operator instead of resending its call in a loop.
struct LogRefusedInput {
  std::string reason;
};

struct Input {
  int64_t now = 0;      // µs since epoch
  double jitter = 0.5;  // uniform in [0, 1): the random part of a retry delay
  std::variant<StartInput, ResultInput, TimerInput, CancelInput, OperatorRetryInput, LogRefusedInput> what;
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

// Applies one logged event to the state: the fold step used by decide,
// recovery, inspection and `show --at`. Events must come in seq order.
void apply(const Definition& def, SagaState& state, const Event& event);

// Folds a whole event list. Refuses (kDataLoss) a list that does not start
// with SagaStarted at seq 1 or skips a seq: a saga with a hole in its log is
// not a saga usher can vouch for.
Result<SagaState> fold(const Definition& def, const std::vector<Event>& events);

// What must be running for a saga loaded from the log (after a restart or a
// reload): the attempt in flight is sent again (same attempt number and
// idempotency key), pending retry and deadline timers are armed again; settled
// for stuck sagas. Marks the call in flight as resumed (CallState::resumed):
// it may have been sent before, so its outcome can no longer be "never left".
std::vector<Command> resume(const Definition& def, SagaState& state, int64_t now);

// Delay before attempt number `next_attempt` (2 for the first retry) under
// `policy`, with full jitter: uniform in [0, min(max_backoff, backoff *
// multiplier^(n-2))]; at least `retry_after` when a service asked for it.
Millis retry_delay(const RetryPolicy& policy, uint32_t attempts_made, double jitter,
                   std::optional<Millis> retry_after);

// Renders the request of a call (its `with`, and its `http.path` if any) from
// the saga's input and the outputs of the steps that succeeded.
Result<std::pair<Json, std::optional<std::string>>> render_request(const Definition& def, const SagaState& state,
                                                                    size_t step, CallKind kind);

// The idempotency key every attempt of a call carries.
std::string idempotency_key(const std::string& saga_id, const std::string& step, CallKind kind);

// Debug builds: asserts the invariants listed in state_machine.cpp.
void check_invariants(const Definition& def, const SagaState& state);

}  // namespace usher
