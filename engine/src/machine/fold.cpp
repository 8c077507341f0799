// The fold: a saga's state is its events applied in order. decide() applies
// each event it emits with the same function, so recovery, the views and
// `usher show --at` see exactly the saga the machine decided on.

#include "machine/fold.h"

#include "usher/event_data.h"

namespace usher {

void apply(const Definition& def, SagaState& s, const Event& e) {
  s.last_seq = e.seq;
  s.updated_at = e.occurred_at;
  std::optional<size_t> step;
  if (!e.step.empty()) step = def.step_index(e.step);
  // Events about a step the definition does not have cannot come from this
  // definition; they are skipped rather than trusted.
  if (!e.step.empty() && !step) return;

  switch (e.type) {
    case EventType::kSagaStarted: {
      SagaStartedData d = read_saga_started(e.data);
      s.id = e.saga_id;
      s.workflow = std::move(d.workflow);
      s.version = d.version;
      s.definition_hash = std::move(d.definition_hash);
      s.status = SagaStatus::kRunning;
      s.input = std::move(d.input);
      s.idempotency_key = std::move(d.idempotency_key);
      s.correlation_id = std::move(d.correlation_id);
      s.traceparent = std::move(d.traceparent);
      s.created_at = e.occurred_at;
      s.deadline = d.deadline;
      s.steps.assign(def.steps.size(), StepState{});
      break;
    }
    case EventType::kStepScheduled: {
      const StepScheduledData d = read_step_scheduled(e.data);
      CallState& c = s.call(*step, d.kind);
      c.attempts = d.attempt != 0 ? d.attempt : c.attempts + 1;
      c.in_flight = true;
      c.retry_at = 0;
      c.scheduled_at = e.occurred_at;
      c.scheduled_seq = e.seq;
      c.resumed = false;
      c.attempt_deadline = d.deadline;
      if (c.started_at == 0) c.started_at = e.occurred_at;
      if (d.kind == CallKind::kAction) {
        s.current = *step;
        if (def.pivot == step) s.pivot_sent = true;
      } else {
        s.steps[*step].compensation_started = true;
      }
      break;
    }
    case EventType::kStepSucceeded: {
      StepSucceededData d = read_step_succeeded(e.data);
      CallState& c = s.call(*step, d.kind);
      c.in_flight = false;
      c.succeeded = true;
      c.last_outcome = Outcome::kOk;
      c.reached = true;
      c.last_reached_outcome = Outcome::kOk;
      c.finished_at = e.occurred_at;
      c.error.clear();
      if (d.kind == CallKind::kAction) {
        s.steps[*step].output = std::move(d.output);
        if (def.pivot == step) s.pivot_succeeded = true;
      } else {
        ++s.compensation_cursor;
      }
      break;
    }
    case EventType::kStepFailed: {
      StepFailedData d = read_step_failed(e.data);
      CallState& c = s.call(*step, d.kind);
      c.in_flight = false;
      c.last_outcome = d.outcome;
      // An attempt that never left says nothing about those that did.
      if (d.sent) {
        c.reached = true;
        c.last_reached_outcome = d.outcome;
      }
      if (d.outcome == Outcome::kTimeout || d.may_have_happened) {
        c.may_have_happened = true;
        c.reached = true;
      }
      c.error = std::move(d.error);
      c.finished_at = e.occurred_at;
      s.last_error = c.error;
      break;
    }
    case EventType::kRetryScheduled: {
      const RetryScheduledData d = read_retry_scheduled(e.data);
      s.call(*step, d.kind).retry_at = d.at;
      break;
    }
    case EventType::kCompensationStarted: {
      const CompensationStartedData d = read_compensation_started(e.data);
      s.status = SagaStatus::kCompensating;
      for (auto& st : s.steps) st.action.retry_at = 0;  // forward work is abandoned
      s.compensation_plan.clear();
      s.compensation_cursor = 0;
      for (const std::string& name : d.steps)
        if (auto idx = def.step_index(name)) s.compensation_plan.push_back(*idx);
      if (!d.reason.empty()) s.last_error = d.reason;
      break;
    }
    case EventType::kSagaCompleted:
      s.status = SagaStatus::kCompleted;
      s.stuck_step.reset();
      break;
    case EventType::kSagaCompensated:
      s.status = SagaStatus::kCompensated;
      s.stuck_step.reset();
      break;
    case EventType::kSagaStuck: {
      const SagaStuckData d = read_saga_stuck(e.data);
      s.status = SagaStatus::kStuck;
      s.stuck_step = step;
      s.stuck_kind = d.kind;
      if (step) {
        CallState& c = s.call(*step, s.stuck_kind);
        c.retry_at = 0;
        if (s.stuck_kind == CallKind::kCompensate) s.steps[*step].compensation_gave_up = true;
      }
      if (!d.error.empty()) s.last_error = d.error;
      break;
    }
    case EventType::kCancelRequested:
      s.cancel_requested = true;
      break;
    case EventType::kOperatorResolved: {
      OperatorResolvedData d = read_operator_resolved(e.data);
      s.stuck_step.reset();
      if (!step) break;
      CallState& c = s.call(*step, d.kind);
      c.retry_at = 0;
      c.finished_at = e.occurred_at;
      c.error.clear();
      if (d.kind == CallKind::kCompensate) {
        // Only "succeeded" is accepted for a compensation (decide.cpp).
        s.status = SagaStatus::kCompensating;
        c.succeeded = true;
        c.last_outcome = Outcome::kOk;
        s.steps[*step].compensation_gave_up = false;
        ++s.compensation_cursor;
        break;
      }
      s.status = SagaStatus::kRunning;
      c.reached = true;
      if (d.succeeded) {
        c.succeeded = true;
        c.last_outcome = c.last_reached_outcome = Outcome::kOk;
        s.steps[*step].output = std::move(d.output);
        if (def.pivot == step) s.pivot_succeeded = true;
      } else {
        // A definite business failure by the operator's word: not undone.
        c.last_outcome = c.last_reached_outcome = Outcome::kFailed;
        c.may_have_happened = false;
        c.error = "resolved as failed by an operator";
      }
      break;
    }
    case EventType::kSagaTerminated:
      s.status = SagaStatus::kTerminated;
      s.stuck_step.reset();
      for (auto& st : s.steps) st.action.retry_at = st.compensation.retry_at = 0;
      if (std::string reason = read_saga_terminated(e.data).reason; !reason.empty())
        s.last_error = "terminated by an operator: " + reason;
      break;
    case EventType::kOperatorRetried: {
      const CallKind kind = read_operator_retried(e.data).kind;
      s.status = kind == CallKind::kAction ? SagaStatus::kRunning : SagaStatus::kCompensating;
      if (step) {
        CallState& c = s.call(*step, kind);
        c.budget_base = c.attempts;
        s.steps[*step].compensation_gave_up = false;
      }
      s.stuck_step.reset();
      break;
    }
  }
}

Result<SagaState> fold(const Definition& def, const std::vector<Event>& events) {
  SagaState s;
  for (const Event& e : events) {
    if (e.seq != s.last_seq + 1 || (e.seq == 1) != (e.type == EventType::kSagaStarted)) {
      return Status::data_loss("saga " + e.saga_id + ": event " + std::to_string(e.seq) + " (" +
                               event_type_name(e.type) + ") follows event " + std::to_string(s.last_seq) +
                               ": the log has a gap or does not begin with SagaStarted");
    }
    apply(def, s, e);
  }
  return s;
}

}  // namespace usher
