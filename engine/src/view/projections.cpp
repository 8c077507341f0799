#include "view/projections.h"

#include "usher/event_data.h"

namespace usher {

SagaRow saga_row(const Definition& def, const SagaState& s) {
  SagaRow row;
  row.id = s.id;
  row.workflow = s.workflow;
  row.version = s.version;
  row.definition_hash = s.definition_hash;
  row.status = s.status;
  if (s.status == SagaStatus::kCompensating && s.compensation_cursor < s.compensation_plan.size())
    row.current_step = def.steps[s.compensation_plan[s.compensation_cursor]].name;
  else if (!is_terminal(s.status) && s.current < def.steps.size())
    row.current_step = def.steps[s.current].name;
  row.idempotency_key = s.idempotency_key;
  row.correlation_id = s.correlation_id;
  row.created_at = s.created_at;
  row.updated_at = s.updated_at;
  row.deadline = s.deadline;
  row.last_error = s.status == SagaStatus::kCompleted ? std::string() : s.last_error;
  row.last_seq = s.last_seq;
  return row;
}

namespace {
// "by token:1a2b3c4d: refunded by hand" for the log line of an operator action.
std::string acted(const OperatorNote& by) {
  std::string out = "by " + (by.actor.empty() ? std::string("an unnamed operator") : by.actor);
  if (!by.note.empty()) out += ": " + by.note;
  return out;
}
}  // namespace

std::vector<TransitionInfo> transitions(const Definition& def, const SagaState& state,
                                        const std::vector<Event>& events) {
  std::vector<TransitionInfo> out;
  out.reserve(events.size());
  for (const Event& e : events) {
    TransitionInfo t;
    t.saga_id = e.saga_id;
    t.workflow = def.name;
    t.event = e.type;
    t.step = e.step;
    t.status = state.status;
    t.kind = event_call_kind(e.data);
    t.correlation_id = state.correlation_id;
    if (!e.step.empty()) {
      if (auto idx = def.step_index(e.step)) {
        const Step& step = def.steps[*idx];
        const CallSpec* call = t.kind == CallKind::kCompensate && step.compensate ? &*step.compensate : &step.action;
        t.service = call->service;
        t.operation = call->operation;
      }
    }
    switch (e.type) {
      case EventType::kStepFailed: {
        const StepFailedData failed = read_step_failed(e.data);
        t.detail = std::string(outcome_name(failed.outcome)) + ": " + failed.error;
        break;
      }
      case EventType::kSagaStuck: t.detail = read_saga_stuck(e.data).error; break;
      case EventType::kSagaCompensated: t.detail = state.last_error; break;  // why it compensated
      case EventType::kCompensationStarted: t.detail = read_compensation_started(e.data).reason; break;
      case EventType::kCancelRequested: t.detail = acted(read_cancel_requested(e.data).by); break;
      case EventType::kOperatorRetried: t.detail = acted(read_operator_retried(e.data).by); break;
      case EventType::kOperatorResolved: {
        const OperatorResolvedData r = read_operator_resolved(e.data);
        t.detail = std::string("outcome ") + (r.succeeded ? "succeeded" : "failed") + ", " + acted(r.by);
        break;
      }
      case EventType::kSagaTerminated: {
        const SagaTerminatedData d = read_saga_terminated(e.data);
        t.detail = acted({d.actor, d.reason});
        break;
      }
      default: break;
    }
    if (e.type == EventType::kStepSucceeded || e.type == EventType::kStepFailed) {
      if (auto idx = def.step_index(e.step)) {
        t.latency_us = e.occurred_at - state.call(*idx, t.kind).scheduled_at;
        if (t.detail.empty()) t.detail = call_kind_name(t.kind);
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace usher
