// What a saga looks like from outside: its status, the events of its log, and
// the filters used to list sagas.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "usher/definition.h"

namespace usher {

// kTerminated: ended by an operator (docs/semantics.md (operator actions)); terminal like completed and
// compensated, but says that what the saga did was left as it stood.
enum class SagaStatus { kRunning, kCompensating, kCompleted, kCompensated, kStuck, kTerminated };
const char* saga_status_name(SagaStatus s);  // "running", ...
std::optional<SagaStatus> parse_saga_status(std::string_view name);
inline bool is_terminal(SagaStatus s) {
  return s == SagaStatus::kCompleted || s == SagaStatus::kCompensated || s == SagaStatus::kTerminated;
}

enum class StepStatus { kPending, kRunning, kSucceeded, kFailed, kUnknown, kCompensating, kCompensated };
const char* step_status_name(StepStatus s);

// The event types of the saga log (docs/architecture.md).
enum class EventType {
  kSagaStarted,
  kStepScheduled,
  kStepSucceeded,
  kStepFailed,
  kRetryScheduled,
  kCompensationStarted,
  kSagaCompleted,
  kSagaCompensated,
  kSagaStuck,
  kCancelRequested,
  kOperatorRetried,
  kOperatorResolved,
  kSagaTerminated,
};
const char* event_type_name(EventType t);  // "SagaStarted", ...
std::optional<EventType> parse_event_type(std::string_view name);

// One row of saga_events. `occurred_at` is microseconds since the Unix epoch.
struct Event {
  std::string saga_id;
  int64_t seq = 0;  // 1-based, dense per saga
  EventType type = EventType::kSagaStarted;
  std::string step;  // empty when the event is not about one step
  Json data = Json::object();
  int64_t occurred_at = 0;
  int64_t causation_seq = 0;  // seq of the event that caused this one (0: an outside request)
};

// Which sagas a listing returns (GET /v1/sagas, `usher ls`): those that match
// every filter given, newest first. Each filter is served by an index.
struct SagaFilter {
  std::optional<SagaStatus> status;
  std::optional<std::string> workflow;
  size_t limit = 50;
  std::optional<std::string> after;  // a cursor: the id of the last saga of the previous page
  std::optional<std::string> idempotency_key;  // the saga started with this key (at most one)
  std::optional<std::string> correlation_id;   // sagas started with this X-Correlation-Id
  // A half-open window of start times, µs since the epoch: created at or after
  // `created_after`, and strictly before `created_before`, so consecutive
  // windows neither overlap nor leave a gap.
  std::optional<int64_t> created_after;
  std::optional<int64_t> created_before;
};

}  // namespace usher
