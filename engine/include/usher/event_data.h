// The `data` of each saga event, typed (docs/architecture.md). Every field of
// every event is written and read here only: the state machine writes them,
// and the fold, the views, the CLI's timeline and a read model of the event
// feed read them back through the same functions.
//
// Writing is exact: a field that says nothing (a note that is empty, an
// attempt that was sent) is left out, so the logged JSON stays as small as
// the documented examples. Reading is forgiving: a missing or mistyped field reads as
// its default, because the log outlives the code that wrote it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "usher/adapter.h"
#include "usher/definition.h"
#include "usher/saga.h"

namespace usher {

struct SagaStartedData {
  std::string workflow;
  int64_t version = 0;
  std::string definition_hash;
  Json input = Json::object();     // as logged: `redact:` pointers hold "[redacted]"
  std::string idempotency_key;     // empty = none
  std::string correlation_id;      // empty = none
  std::string traceparent;         // empty = none
  std::optional<int64_t> deadline;  // µs, the saga deadline
};

struct StepScheduledData {
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 0;  // 0 when absent: the reader counts on
  int64_t deadline = 0;  // µs; informative, the attempt times out from when it is sent
};

struct StepSucceededData {
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 0;
  Json output = Json::object();  // the action's reply
  std::string note;              // what usher made of a reply it could not read as JSON
};

struct StepFailedData {
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 0;
  Outcome outcome = Outcome::kFailed;
  std::string error;
  std::optional<int64_t> retry_after_ms;  // the service's Retry-After
  bool sent = true;                       // false: the attempt provably never left
  bool may_have_happened = false;         // re-sent after a restart: the first send may have reached it
};

struct RetryScheduledData {
  CallKind kind = CallKind::kAction;
  uint32_t attempt = 0;  // the attempt that is due
  int64_t at = 0;        // µs
};

struct CompensationStartedData {
  std::string reason;
  std::vector<std::string> steps;  // in the order they are compensated
};

struct SagaStuckData {
  CallKind kind = CallKind::kAction;
  std::string error;
};

// Who performed an operator action and why (docs/semantics.md (operator actions)). `actor`
// names the credential that acted: "token:" and the first 8 hex digits of
// the SHA-256 of the API token, "anonymous" on a server without a token, or
// what an embedding program passed.
struct OperatorNote {
  std::string actor;  // empty = not recorded
  std::string note;   // empty = none
};

struct CancelRequestedData {
  OperatorNote by;
};

struct OperatorRetriedData {
  CallKind kind = CallKind::kAction;
  OperatorNote by;
};

// The operator states the outcome of the stuck call; the saga goes on as if
// the service had answered so.
struct OperatorResolvedData {
  CallKind kind = CallKind::kAction;
  bool succeeded = true;         // "outcome": "succeeded" | "failed"
  Json output = Json::object();  // the action's output, when it succeeded
  OperatorNote by;
};

struct SagaTerminatedData {
  std::string reason;
  std::string actor;
};

// SagaCompleted and SagaCompensated carry `{}`.

// The two that carry a saga's JSON (its input, a step's output) take it by
// value: a caller that is done with it moves it in instead of copying it twice.
Json to_json(SagaStartedData d);
Json to_json(const StepScheduledData& d);
Json to_json(StepSucceededData d);
Json to_json(const StepFailedData& d);
Json to_json(const RetryScheduledData& d);
Json to_json(const CompensationStartedData& d);
Json to_json(const SagaStuckData& d);
Json to_json(const CancelRequestedData& d);
Json to_json(const OperatorRetriedData& d);
Json to_json(OperatorResolvedData d);
Json to_json(const SagaTerminatedData& d);

SagaStartedData read_saga_started(const Json& data);
StepScheduledData read_step_scheduled(const Json& data);
StepSucceededData read_step_succeeded(const Json& data);
StepFailedData read_step_failed(const Json& data);
RetryScheduledData read_retry_scheduled(const Json& data);
CompensationStartedData read_compensation_started(const Json& data);
SagaStuckData read_saga_stuck(const Json& data);
CancelRequestedData read_cancel_requested(const Json& data);
OperatorRetriedData read_operator_retried(const Json& data);
OperatorResolvedData read_operator_resolved(const Json& data);
SagaTerminatedData read_saga_terminated(const Json& data);

// The call an event is about (StepScheduled/Succeeded/Failed, RetryScheduled,
// SagaStuck, OperatorRetried, OperatorResolved): its `kind`, action when absent.
CallKind event_call_kind(const Json& data);
// Its `attempt`, 0 when absent.
uint32_t event_attempt(const Json& data);

}  // namespace usher
