#include "usher/event_data.h"

namespace usher {

namespace {

int64_t int_field(const Json& data, const char* key, int64_t fallback = 0) {
  if (!data.is_object()) return fallback;
  auto it = data.find(key);
  return (it != data.end() && it->is_number_integer()) ? it->get<int64_t>() : fallback;
}

std::string string_field(const Json& data, const char* key) {
  if (!data.is_object()) return {};
  auto it = data.find(key);
  return (it != data.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

bool bool_field(const Json& data, const char* key, bool fallback) {
  if (!data.is_object()) return fallback;
  auto it = data.find(key);
  return (it != data.end() && it->is_boolean()) ? it->get<bool>() : fallback;
}

Json object_field(const Json& data, const char* key) {
  if (!data.is_object()) return Json::object();
  auto it = data.find(key);
  return it != data.end() ? *it : Json::object();
}

Outcome outcome_field(const Json& data) {
  const std::string o = string_field(data, "outcome");
  if (o == "transient") return Outcome::kTransient;
  if (o == "timeout") return Outcome::kTimeout;
  if (o == "ok") return Outcome::kOk;
  return Outcome::kFailed;
}

uint32_t attempt_of(int64_t n) { return n < 0 || n > UINT32_MAX ? 0 : static_cast<uint32_t>(n); }

}  // namespace

CallKind event_call_kind(const Json& data) {
  return string_field(data, "kind") == "compensate" ? CallKind::kCompensate : CallKind::kAction;
}

uint32_t event_attempt(const Json& data) { return attempt_of(int_field(data, "attempt")); }

// ---- writing ------------------------------------------------------------------

Json to_json(SagaStartedData d) {
  Json j = {{"workflow", std::move(d.workflow)}, {"version", d.version},
            {"definition_hash", std::move(d.definition_hash)}, {"input", std::move(d.input)}};
  if (!d.idempotency_key.empty()) j["idempotency_key"] = d.idempotency_key;
  if (!d.correlation_id.empty()) j["correlation_id"] = d.correlation_id;
  if (!d.traceparent.empty()) j["traceparent"] = d.traceparent;
  if (d.deadline) j["deadline"] = *d.deadline;
  return j;
}

Json to_json(const StepScheduledData& d) {
  return {{"kind", call_kind_name(d.kind)}, {"attempt", d.attempt}, {"deadline", d.deadline}};
}

Json to_json(StepSucceededData d) {
  Json j = {{"kind", call_kind_name(d.kind)}, {"attempt", d.attempt}, {"output", std::move(d.output)}};
  if (!d.note.empty()) j["note"] = std::move(d.note);
  return j;
}

Json to_json(const StepFailedData& d) {
  Json j = {{"kind", call_kind_name(d.kind)},
            {"attempt", d.attempt},
            {"outcome", outcome_name(d.outcome)},
            {"error", d.error}};
  if (d.retry_after_ms) j["retry_after_ms"] = *d.retry_after_ms;
  if (!d.sent) j["sent"] = false;
  if (d.may_have_happened) j["may_have_happened"] = true;
  return j;
}

Json to_json(const RetryScheduledData& d) {
  return {{"kind", call_kind_name(d.kind)}, {"attempt", d.attempt}, {"at", d.at}};
}

Json to_json(const CompensationStartedData& d) { return {{"reason", d.reason}, {"steps", d.steps}}; }

Json to_json(const SagaStuckData& d) { return {{"kind", call_kind_name(d.kind)}, {"error", d.error}}; }

namespace {
void put_note(Json& j, const OperatorNote& by) {
  if (!by.actor.empty()) j["actor"] = by.actor;
  if (!by.note.empty()) j["note"] = by.note;
}
OperatorNote read_note(const Json& data) { return {string_field(data, "actor"), string_field(data, "note")}; }
}  // namespace

Json to_json(const CancelRequestedData& d) {
  Json j = Json::object();
  put_note(j, d.by);
  return j;
}

Json to_json(const OperatorRetriedData& d) {
  Json j = {{"kind", call_kind_name(d.kind)}};
  put_note(j, d.by);
  return j;
}

Json to_json(OperatorResolvedData d) {
  Json j = {{"kind", call_kind_name(d.kind)}, {"outcome", d.succeeded ? "succeeded" : "failed"}};
  if (d.succeeded) j["output"] = std::move(d.output);
  put_note(j, d.by);
  return j;
}

Json to_json(const SagaTerminatedData& d) {
  Json j = {{"reason", d.reason}};
  if (!d.actor.empty()) j["actor"] = d.actor;
  return j;
}

// ---- reading ------------------------------------------------------------------

SagaStartedData read_saga_started(const Json& data) {
  SagaStartedData d;
  d.workflow = string_field(data, "workflow");
  d.version = int_field(data, "version");
  d.definition_hash = string_field(data, "definition_hash");
  d.input = object_field(data, "input");
  d.idempotency_key = string_field(data, "idempotency_key");
  d.correlation_id = string_field(data, "correlation_id");
  d.traceparent = string_field(data, "traceparent");
  if (data.is_object())
    if (auto dl = data.find("deadline"); dl != data.end() && dl->is_number_integer()) d.deadline = dl->get<int64_t>();
  return d;
}

StepScheduledData read_step_scheduled(const Json& data) {
  return {event_call_kind(data), event_attempt(data), int_field(data, "deadline")};
}

StepSucceededData read_step_succeeded(const Json& data) {
  return {event_call_kind(data), event_attempt(data), object_field(data, "output"), string_field(data, "note")};
}

StepFailedData read_step_failed(const Json& data) {
  StepFailedData d;
  d.kind = event_call_kind(data);
  d.attempt = event_attempt(data);
  d.outcome = outcome_field(data);
  d.error = string_field(data, "error");
  if (data.is_object())
    if (auto r = data.find("retry_after_ms"); r != data.end() && r->is_number_integer())
      d.retry_after_ms = r->get<int64_t>();
  d.sent = bool_field(data, "sent", true);
  d.may_have_happened = bool_field(data, "may_have_happened", false);
  return d;
}

RetryScheduledData read_retry_scheduled(const Json& data) {
  return {event_call_kind(data), event_attempt(data), int_field(data, "at")};
}

CompensationStartedData read_compensation_started(const Json& data) {
  CompensationStartedData d;
  d.reason = string_field(data, "reason");
  if (data.is_object())
    if (auto it = data.find("steps"); it != data.end() && it->is_array())
      for (const auto& name : *it)
        if (name.is_string()) d.steps.push_back(name.get<std::string>());
  return d;
}

SagaStuckData read_saga_stuck(const Json& data) { return {event_call_kind(data), string_field(data, "error")}; }

CancelRequestedData read_cancel_requested(const Json& data) { return {read_note(data)}; }

OperatorRetriedData read_operator_retried(const Json& data) { return {event_call_kind(data), read_note(data)}; }

OperatorResolvedData read_operator_resolved(const Json& data) {
  return {event_call_kind(data), string_field(data, "outcome") != "failed", object_field(data, "output"),
          read_note(data)};
}

SagaTerminatedData read_saga_terminated(const Json& data) {
  return {string_field(data, "reason"), string_field(data, "actor")};
}

}  // namespace usher
