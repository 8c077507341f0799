// decide(): what one input means for a saga. The design notes (statuses,
// invariants, transitions, the uncertain-outcome rules) are in machine.h.

#include <algorithm>

#include "machine/fold.h"
#include "machine/invariants.h"
#include "machine/machine.h"
#include "machine/render.h"
#include "machine/retry_delay.h"
#include "model/redaction.h"
#include "usher/service_text.h"
#include "usher/duration.h"
#include "usher/event_data.h"

namespace usher {

const char* timer_kind_name(TimerKind k) {
  switch (k) {
    case TimerKind::kRetry: return "retry";
    case TimerKind::kAttemptTimeout: return "attempt_timeout";
    case TimerKind::kDeadline: return "deadline";
  }
  return "unknown";
}

namespace {

// Builds one decision: emits events (applying each at once) and commands.
class Decider {
 public:
  Decider(const Definition& def, SagaState& s, const Input& in) : def_(def), s_(s), in_(in) {}

  Decision run() {
    std::visit([this](const auto& what) { on(what); }, in_.what);
    return std::move(d_);
  }

 private:
  // -- emitting --
  void emit(EventType type, const std::string& step, Json data, int64_t causation = 0) {
    Event e;
    e.saga_id = s_.id;
    e.seq = s_.last_seq + 1;
    e.type = type;
    e.step = step;
    e.data = std::move(data);
    e.occurred_at = in_.now;
    e.causation_seq = causation;
    apply(def_, s_, e);
    d_.events.push_back(std::move(e));
  }
  void refuse(Status why) { d_.refused = std::move(why); }
  void ignore(std::string why) { d_.ignored = std::move(why); }

  const CallSpec& spec(size_t step, CallKind kind) const {
    return kind == CallKind::kAction ? def_.steps[step].action : *def_.steps[step].compensate;
  }

  // -- inputs --
  void on(const StartInput& start) {
    if (s_.started()) return refuse(Status::already_exists("saga " + start.saga_id + " already started"));
    SagaStartedData data;
    data.workflow = def_.name;
    data.version = def_.version;
    data.definition_hash = def_.hash;
    data.input = def_.redact.empty() ? start.input : redact_input(def_, start.input);
    data.idempotency_key = start.idempotency_key;
    data.correlation_id = start.correlation_id;
    data.traceparent = start.traceparent;
    if (def_.timeout) data.deadline = in_.now + def_.timeout->count() * 1000;
    const std::optional<int64_t> deadline = data.deadline;
    s_.id = start.saga_id;  // emit() stamps events with it
    emit(EventType::kSagaStarted, "", to_json(std::move(data)));
    if (!def_.redact.empty()) s_.unredacted_input = std::make_shared<const Json>(start.input);
    if (deadline) d_.commands.push_back(TimerCommand{TimerKind::kDeadline, 0, CallKind::kAction, 0, *deadline});
    run_forward(0);
  }

  void on(const ResultInput& r) {
    if (!s_.started() || r.step >= s_.steps.size()) return ignore("result for an unknown step");
    const CallState& c = s_.call(r.step, r.kind);
    if (!c.in_flight || c.attempts != r.attempt)
      return ignore("late result of attempt " + std::to_string(r.attempt) + " dropped");
    if (r.kind == CallKind::kAction && s_.status != SagaStatus::kRunning)
      return ignore("action result while " + std::string(saga_status_name(s_.status)));
    if (r.kind == CallKind::kCompensate && s_.status != SagaStatus::kCompensating)
      return ignore("compensation result while " + std::string(saga_status_name(s_.status)));
    record_result(r.step, r.kind, r.attempt, r.result);
  }

  void on(const TimerInput& t) {
    if (!s_.started()) return ignore("timer for a saga that has not started");
    switch (t.kind) {
      case TimerKind::kDeadline: return on_deadline();
      case TimerKind::kAttemptTimeout: {
        if (t.step >= s_.steps.size()) return ignore("timer for an unknown step");
        const CallState& c = s_.call(t.step, t.call);
        if (!c.in_flight || c.attempts != t.attempt) return ignore("timeout of a finished attempt");
        auto timeout = spec(t.step, t.call).timeout;
        return on(ResultInput{t.step, t.call, t.attempt,
                              StepResult::timeout("no answer within " + format_duration(timeout))});
      }
      case TimerKind::kRetry: {
        if (t.step >= s_.steps.size()) return ignore("timer for an unknown step");
        const CallState& c = s_.call(t.step, t.call);
        bool right_status = t.call == CallKind::kAction ? s_.status == SagaStatus::kRunning
                                                        : s_.status == SagaStatus::kCompensating;
        if (!right_status || c.retry_at == 0 || c.in_flight || c.attempts + 1 != t.attempt)
          return ignore("retry timer no longer needed");
        return schedule(t.step, t.call);
      }
    }
  }

  void on(const CancelInput& cancel) {
    if (!s_.started()) return refuse(Status::not_found("saga not found"));
    if (s_.status != SagaStatus::kRunning)
      return refuse(Status::failed_precondition(std::string("saga is ") + saga_status_name(s_.status) +
                                                ", only a running saga can be cancelled"));
    if (s_.pivot_sent) {
      return refuse(Status::failed_precondition("the pivot step \"" + def_.steps[*def_.pivot].name +
                                                "\" was already sent; the saga can only go forward"));
    }
    if (s_.cancel_requested) return;  // asked twice: the first request stands
    emit(EventType::kCancelRequested, "", to_json(CancelRequestedData{cancel.by}));
    // A forward step in flight is waited for (see the notes); otherwise the
    // saga stops where it is and compensates now.
    if (!s_.steps[s_.current].action.in_flight) start_compensation("cancelled by request");
  }

  // Operator actions act on a stuck saga only; cancel is the one for a running saga.
  std::optional<Status> not_stuck(const char* verb) const {
    if (!s_.started()) return Status::not_found("saga not found");
    if (s_.status != SagaStatus::kStuck || !s_.stuck_step)
      return Status::failed_precondition(std::string("saga is ") + saga_status_name(s_.status) +
                                         ", only a stuck saga can be " + verb +
                                         (s_.status == SagaStatus::kRunning ? " (cancel stops a running saga)" : ""));
    return std::nullopt;
  }

  void on(const OperatorRetryInput& retry) {
    if (auto why = not_stuck("retried")) return refuse(std::move(*why));
    size_t step = *s_.stuck_step;
    CallKind kind = s_.stuck_kind;
    emit(EventType::kOperatorRetried, def_.steps[step].name, to_json(OperatorRetriedData{kind, retry.by}));
    schedule(step, kind);
  }

  void on(const OperatorResolveInput& r) {
    if (auto why = not_stuck("resolved")) return refuse(std::move(*why));
    const size_t step = *s_.stuck_step;
    const CallKind kind = s_.stuck_kind;
    const Step& st = def_.steps[step];
    const std::string call = kind == CallKind::kAction ? "action" : "compensation";
    if (r.step != st.name) {
      return refuse(Status::failed_precondition("saga is stuck at the " + call + " of step \"" + st.name +
                                                "\", not at step \"" + r.step + "\""));
    }
    if (!r.output.is_object()) return refuse(Status::invalid_argument("output must be a JSON object"));
    if (kind == CallKind::kCompensate && (s_.compensation_cursor >= s_.compensation_plan.size() ||
                                          s_.compensation_plan[s_.compensation_cursor] != step))
      return refuse(Status::internal("the stuck compensation is not the next one of the plan"));
    if (!r.succeeded && kind == CallKind::kCompensate) {
      return refuse(Status::failed_precondition(
          "a compensation resolved as failed would leave the saga stuck again; undo step \"" + st.name +
          "\" by hand and resolve it as succeeded, retry it, or terminate the saga"));
    }
    if (!r.succeeded && (st.type == StepType::kRetriable || s_.pivot_succeeded)) {
      return refuse(Status::failed_precondition(
          "step \"" + st.name + "\" comes after the pivot, so the saga cannot compensate; resolve it as "
          "succeeded, retry it, or terminate the saga"));
    }
    OperatorResolvedData data{kind, r.succeeded, r.succeeded ? r.output : Json::object(), r.by};
    emit(EventType::kOperatorResolved, st.name, to_json(std::move(data)));
    if (kind == CallKind::kCompensate) return next_compensation();
    if (!r.succeeded) {
      std::string why = "step \"" + st.name + "\" resolved as failed by an operator";
      if (!r.by.note.empty()) why += ": " + r.by.note;
      return start_compensation(valid_utf8(why, 1024));
    }
    if (s_.cancel_requested && !s_.pivot_succeeded) return start_compensation("cancelled by request");
    if (deadline_passed()) return start_compensation("saga deadline exceeded");
    run_forward(step + 1);
  }

  void on(const TerminateInput& t) {
    if (auto why = not_stuck("terminated")) return refuse(std::move(*why));
    emit(EventType::kSagaTerminated, "", to_json(SagaTerminatedData{valid_utf8(t.reason, 1024), t.actor}));
    d_.commands.push_back(SettledCommand{SagaStatus::kTerminated});
  }

  void on(const LogRefusedInput& refused) {
    if (!s_.started()) return ignore("log refusal for a saga that has not started");
    if (is_terminal(s_.status) || s_.status == SagaStatus::kStuck) return ignore("log refusal of a settled saga");
    // The call that was active is where an operator resumes.
    std::optional<std::pair<size_t, CallKind>> active;
    for (size_t i = 0; i < s_.steps.size() && !active; ++i)
      for (CallKind kind : {CallKind::kAction, CallKind::kCompensate})
        if (s_.call(i, kind).in_flight || s_.call(i, kind).retry_at != 0) active.emplace(i, kind);
    if (!active) {
      size_t at = s_.status == SagaStatus::kCompensating && s_.compensation_cursor < s_.compensation_plan.size()
                      ? s_.compensation_plan[s_.compensation_cursor]
                      : s_.current;
      active.emplace(at, s_.status == SagaStatus::kCompensating ? CallKind::kCompensate : CallKind::kAction);
    }
    const std::string reason = "internal error, the saga log refused its events: " + refused.reason;
    const CallState& c = s_.call(active->first, active->second);
    if (c.in_flight) {
      // Its answer can no longer be recorded: the attempt may have happened.
      StepFailedData failed;
      failed.kind = active->second;
      failed.attempt = c.attempts;
      failed.outcome = Outcome::kTimeout;
      failed.error = valid_utf8(reason);
      emit(EventType::kStepFailed, def_.steps[active->first].name, to_json(failed), c.scheduled_seq);
    }
    stuck(active->first, active->second, reason);
  }

  // -- forward --
  void run_forward(size_t from) {
    if (from >= def_.steps.size()) {
      emit(EventType::kSagaCompleted, "", Json::object());
      d_.commands.push_back(SettledCommand{SagaStatus::kCompleted});
      return;
    }
    schedule(from, CallKind::kAction);
  }

  // Schedules the next attempt of a call: renders its request and emits
  // StepScheduled, or fails the call at once when the request cannot be built.
  void schedule(size_t step, CallKind kind) {
    const CallSpec& cs = spec(step, kind);
    auto rendered = render_request(step, kind);
    const CallState& c = s_.call(step, kind);
    if (!rendered.is_ok()) {
      StepFailedData failed;
      failed.kind = kind;
      failed.attempt = c.attempts;
      failed.outcome = Outcome::kFailed;
      failed.sent = false;
      failed.error = valid_utf8("request not sent: " + rendered.status().message());
      emit(EventType::kStepFailed, def_.steps[step].name, to_json(failed));
      return kind == CallKind::kAction ? give_up_forward(step) : stuck(step, kind);
    }
    uint32_t attempt = c.attempts + 1;
    // Informative: the executor arms the real timer when the request leaves.
    int64_t deadline = in_.now + cs.timeout.count() * 1000;
    emit(EventType::kStepScheduled, def_.steps[step].name, to_json(StepScheduledData{kind, attempt, deadline}));
    DispatchCommand cmd{step, kind, attempt, std::move(rendered->first), std::move(rendered->second)};
    d_.commands.push_back(std::move(cmd));
  }

  Result<std::pair<Json, std::optional<std::string>>> render_request(size_t step, CallKind kind) const {
    return usher::render_request(def_, s_, step, kind);
  }

  void record_result(size_t step, CallKind kind, uint32_t attempt, const StepResult& r) {
    const std::string& name = def_.steps[step].name;
    const CallState& call = s_.call(step, kind);
    int64_t cause = call.scheduled_seq;
    const bool resumed = call.resumed;
    if (r.outcome == Outcome::kOk) {
      StepSucceededData ok{kind, attempt, r.output, r.note.empty() ? std::string() : valid_utf8(r.note)};
      emit(EventType::kStepSucceeded, name, to_json(std::move(ok)), cause);
      if (kind == CallKind::kCompensate) return next_compensation();
      if (s_.cancel_requested && !s_.pivot_succeeded) return start_compensation("cancelled by request");
      if (deadline_passed()) return start_compensation("saga deadline exceeded");
      return run_forward(step + 1);
    }
    StepFailedData failed;
    failed.kind = kind;
    failed.attempt = attempt;
    failed.outcome = r.outcome;
    failed.error = valid_utf8(r.error);
    if (r.retry_after) failed.retry_after_ms = r.retry_after->count();
    // An attempt re-sent after a restart may have reached the service the
    // first time: whatever the re-send says, it cannot prove it did not.
    failed.sent = r.sent || resumed;
    failed.may_have_happened = resumed && r.outcome != Outcome::kTimeout;
    emit(EventType::kStepFailed, name, to_json(failed), cause);

    if (r.outcome == Outcome::kFailed) {
      return kind == CallKind::kAction ? give_up_forward(step) : stuck(step, kind);
    }
    // Transient or unknown: retry if the policy and the saga allow it.
    if (kind == CallKind::kAction && s_.cancel_requested && !s_.pivot_succeeded)
      return give_up_forward(step, "cancelled by request");
    if (kind == CallKind::kAction && deadline_passed()) return give_up_forward(step, "saga deadline exceeded");
    const CallSpec& cs = spec(step, kind);
    const CallState& c = s_.call(step, kind);
    bool budget_left = cs.retry.unlimited() || c.budget_used() < cs.retry.attempts;
    if (budget_left) {
      Millis delay = retry_delay(cs.retry, c.budget_used(), in_.jitter, r.retry_after);
      int64_t at = in_.now + delay.count() * 1000;
      emit(EventType::kRetryScheduled, name, to_json(RetryScheduledData{kind, attempt + 1, at}));
      d_.commands.push_back(TimerCommand{TimerKind::kRetry, step, kind, attempt + 1, at});
      return;
    }
    return kind == CallKind::kAction ? give_up_forward(step) : stuck(step, kind);
  }

  // The saga deadline applies until the pivot succeeded.
  bool deadline_passed() const {
    return !s_.pivot_succeeded && s_.deadline && in_.now >= *s_.deadline;
  }

  // A forward step will not succeed (or the saga must stop going forward):
  // compensate, or wait for an operator when going back is not allowed or
  // not safe. `why` replaces the step's own error as the reason when given.
  void give_up_forward(size_t step, const std::string& why = {}) {
    const Step& st = def_.steps[step];
    const CallState& c = s_.steps[step].action;
    if (st.type == StepType::kRetriable || s_.pivot_succeeded) return stuck(step, CallKind::kAction);
    if (st.type == StepType::kPivot && c.may_have_happened) {
      return stuck(step, CallKind::kAction,
                   "the pivot \"" + st.name + "\" may have happened (an attempt got no answer), so the saga "
                   "cannot compensate: the ticket may exist. Last error: " + c.error);
    }
    if (!why.empty()) return start_compensation(why);
    // Adapters may already name the step in their errors ("step \"pay\"
    // (payments.charge): no answer…"): say it once.
    const std::string named = "step \"" + st.name + "\"";
    start_compensation(c.error.rfind(named, 0) == 0 ? c.error : named + " failed: " + c.error);
  }

  void on_deadline() {
    if (s_.status != SagaStatus::kRunning || s_.pivot_succeeded || !s_.deadline) return ignore("deadline no longer applies");
    if (in_.now < *s_.deadline) return ignore("deadline not reached");
    size_t cur = s_.current;
    const CallState& c = s_.steps[cur].action;
    // An attempt in flight is awaited: its result (or its own timeout) comes
    // back to record_result, which is not retried past the deadline and then
    // compensates.
    if (c.in_flight) return ignore("deadline passed: waiting for the attempt in flight");
    give_up_forward(cur, "saga deadline exceeded");
  }

  // -- backward --
  void start_compensation(const std::string& reason) {
    CompensationStartedData plan{reason, {}};
    // Every step, last first, that may have happened is undone (needs_undo).
    for (size_t i = def_.steps.size(); i-- > 0;) {
      if (def_.steps[i].compensate && needs_undo(s_.steps[i].action)) plan.steps.push_back(def_.steps[i].name);
    }
    emit(EventType::kCompensationStarted, "", to_json(plan));
    next_compensation();
  }

  void next_compensation() {
    if (s_.compensation_cursor >= s_.compensation_plan.size()) {
      emit(EventType::kSagaCompensated, "", Json::object());
      d_.commands.push_back(SettledCommand{SagaStatus::kCompensated});
      return;
    }
    schedule(s_.compensation_plan[s_.compensation_cursor], CallKind::kCompensate);
  }

  void stuck(size_t step, CallKind kind, const std::string& reason = {}) {
    const CallState& c = s_.call(step, kind);
    emit(EventType::kSagaStuck, def_.steps[step].name,
         to_json(SagaStuckData{kind, valid_utf8(reason.empty() ? c.error : reason, 1024)}));
    d_.commands.push_back(SettledCommand{SagaStatus::kStuck});
  }

  const Definition& def_;
  SagaState& s_;
  const Input& in_;
  Decision d_;
};

}  // namespace

Decision decide(const Definition& def, SagaState& state, const Input& input) {
  Decision d = Decider(def, state, input).run();
#ifndef NDEBUG
  if (state.started()) check_invariants(def, state);
#endif
  return d;
}

}  // namespace usher
