// The names of enumerations as they appear in the log, the API and the CLI.
// They are part of the contract: changing one breaks stored logs and clients.
#include <array>
#include <cstdlib>

#include "usher/adapter.h"
#include "usher/definition.h"
#include "usher/saga.h"
#include "usher/status.h"

namespace usher {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kFailedPrecondition: return "failed_precondition";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kDataLoss: return "data_loss";
    case StatusCode::kInternal: return "internal";
    case StatusCode::kAborted: return "aborted";
    case StatusCode::kNotOwner: return "not_owner";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kHttp: return "http";
    case Transport::kKafka: return "kafka";
    case Transport::kLocal: return "local";
  }
  return "unknown";
}

const char* step_type_name(StepType t) {
  switch (t) {
    case StepType::kCompensatable: return "compensatable";
    case StepType::kPivot: return "pivot";
    case StepType::kRetriable: return "retriable";
  }
  return "unknown";
}

const char* call_kind_name(CallKind k) { return k == CallKind::kAction ? "action" : "compensate"; }

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kOk: return "ok";
    case Outcome::kFailed: return "failed";
    case Outcome::kTransient: return "transient";
    case Outcome::kTimeout: return "timeout";
  }
  return "unknown";
}

namespace {
constexpr std::array<const char*, 6> kSagaStatusNames = {"running",     "compensating", "completed",
                                                         "compensated", "stuck",        "terminated"};
constexpr std::array<const char*, 13> kEventTypeNames = {
    "SagaStarted",     "StepScheduled",   "StepSucceeded",   "StepFailed",
    "RetryScheduled",  "CompensationStarted", "SagaCompleted", "SagaCompensated",
    "SagaStuck",       "CancelRequested", "OperatorRetried", "OperatorResolved",
    "SagaTerminated"};
}  // namespace

const char* saga_status_name(SagaStatus s) { return kSagaStatusNames[static_cast<size_t>(s)]; }

std::optional<SagaStatus> parse_saga_status(std::string_view name) {
  for (size_t i = 0; i < kSagaStatusNames.size(); ++i)
    if (name == kSagaStatusNames[i]) return static_cast<SagaStatus>(i);
  return std::nullopt;
}

const char* step_status_name(StepStatus s) {
  switch (s) {
    case StepStatus::kPending: return "pending";
    case StepStatus::kRunning: return "running";
    case StepStatus::kSucceeded: return "succeeded";
    case StepStatus::kFailed: return "failed";
    case StepStatus::kUnknown: return "unknown";
    case StepStatus::kCompensating: return "compensating";
    case StepStatus::kCompensated: return "compensated";
  }
  return "unknown";
}

const char* event_type_name(EventType t) { return kEventTypeNames[static_cast<size_t>(t)]; }

std::optional<EventType> parse_event_type(std::string_view name) {
  for (size_t i = 0; i < kEventTypeNames.size(); ++i)
    if (name == kEventTypeNames[i]) return static_cast<EventType>(i);
  return std::nullopt;
}

std::string Diagnostic::to_string() const {
  std::string out = file;
  if (pos.line > 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col);
  return out + ": " + message;
}

std::optional<size_t> Definition::step_index(std::string_view step_name) const {
  for (size_t i = 0; i < steps.size(); ++i)
    if (steps[i].name == step_name) return i;
  return std::nullopt;
}

std::optional<std::string> process_env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace usher
