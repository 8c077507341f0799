// The saga state machine.
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
//       succeeded   v                                                |
//              COMPLETED                                  COMPENSATED (every compensation done)
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
//      compensation succeeded.
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
//   Operator retry           -> OperatorRetried, StepScheduled             on_operator_retry
//
// Uncertain outcomes (DESIGN.md section 3; also docs/semantics.md):
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
// Choices where DESIGN.md is silent (also in docs/semantics.md):
//   - A step whose request cannot be rendered (an expression points at a value
//     that is not there) fails as a business failure without being sent
//     (StepFailed with "sent": false); what earlier attempts said still counts.
//   - Text from services (errors, notes) is stored as valid UTF-8 of at most
//     512 bytes (valid_utf8), whatever the adapter passed in.
//   - A compensation refused with a business failure makes the saga STUCK at
//     once: retrying a refusal will not change it, an operator must look.
//   - Secrets (`redact:`) are logged as "[redacted]"; the real values live in
//     SagaState::unredacted_input, in memory only. After a restart a call that
//     reads one cannot be rendered, so it fails as above; an attempt of such a
//     call that was in flight at the crash cannot be sent again either, so its
//     outcome is unknown: recovery times it out at once.

#include "core/state_machine.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "model/expression.h"
#include "model/redaction.h"
#include "model/utf8_text.h"

namespace usher {

const char* timer_kind_name(TimerKind k) {
  switch (k) {
    case TimerKind::kRetry: return "retry";
    case TimerKind::kAttemptTimeout: return "attempt_timeout";
    case TimerKind::kDeadline: return "deadline";
  }
  return "unknown";
}

std::string idempotency_key(const std::string& saga_id, const std::string& step, CallKind kind) {
  std::string key;
  key.reserve(saga_id.size() + step.size() + 13);
  key.append(saga_id).append(":").append(step).append(":").append(call_kind_name(kind));
  return key;
}

Millis retry_delay(const RetryPolicy& policy, uint32_t attempts_made, double jitter,
                   std::optional<Millis> retry_after) {
  // attempts_made >= 1; the first retry waits up to `backoff`.
  double ceiling = static_cast<double>(policy.backoff.count()) *
                   std::pow(std::max(policy.multiplier, 1.0), static_cast<double>(attempts_made - 1));
  ceiling = std::min(ceiling, static_cast<double>(policy.max_backoff.count()));
  if (!std::isfinite(ceiling) || ceiling < 0) ceiling = static_cast<double>(policy.max_backoff.count());
  jitter = std::clamp(jitter, 0.0, 1.0);
  auto delay = Millis(static_cast<int64_t>(ceiling * jitter));
  if (retry_after && *retry_after > delay) delay = *retry_after;
  return delay;
}

bool needs_undo(const CallState& a) {
  if (a.succeeded || a.may_have_happened) return true;
  return a.reached && a.last_reached_outcome != Outcome::kFailed;
}

StepStatus step_status(const SagaState& state, size_t i) {
  const StepState& s = state.steps[i];
  if (s.compensation.succeeded) return StepStatus::kCompensated;
  if (s.compensation_started) return StepStatus::kCompensating;
  const CallState& a = s.action;
  if (a.succeeded) return StepStatus::kSucceeded;
  if (a.in_flight || a.retry_at != 0) return StepStatus::kRunning;
  if (!a.last_outcome) return StepStatus::kPending;
  if (a.may_have_happened) return StepStatus::kUnknown;
  return StepStatus::kFailed;
}

// ---- The fold ---------------------------------------------------------------

namespace {

CallKind kind_of(const Json& data) {
  auto it = data.find("kind");
  return (it != data.end() && it->is_string() && it->get_ref<const std::string&>() == "compensate")
             ? CallKind::kCompensate
             : CallKind::kAction;
}

int64_t int_field(const Json& data, const char* key, int64_t fallback = 0) {
  auto it = data.find(key);
  return (it != data.end() && it->is_number_integer()) ? it->get<int64_t>() : fallback;
}

std::string string_field(const Json& data, const char* key) {
  auto it = data.find(key);
  return (it != data.end() && it->is_string()) ? it->get<std::string>() : std::string();
}

bool bool_field(const Json& data, const char* key, bool fallback) {
  auto it = data.find(key);
  return (it != data.end() && it->is_boolean()) ? it->get<bool>() : fallback;
}

std::optional<Outcome> outcome_of(const Json& data) {
  std::string o = string_field(data, "outcome");
  if (o == "failed") return Outcome::kFailed;
  if (o == "transient") return Outcome::kTransient;
  if (o == "timeout") return Outcome::kTimeout;
  if (o == "ok") return Outcome::kOk;
  return std::nullopt;
}

}  // namespace

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
      s.id = e.saga_id;
      s.workflow = string_field(e.data, "workflow");
      s.version = int_field(e.data, "version");
      s.definition_hash = string_field(e.data, "definition_hash");
      s.status = SagaStatus::kRunning;
      auto in = e.data.find("input");
      s.input = in != e.data.end() ? *in : Json::object();
      s.idempotency_key = string_field(e.data, "idempotency_key");
      s.correlation_id = string_field(e.data, "correlation_id");
      s.traceparent = string_field(e.data, "traceparent");
      s.created_at = e.occurred_at;
      auto dl = e.data.find("deadline");
      if (dl != e.data.end() && dl->is_number_integer()) s.deadline = dl->get<int64_t>();
      s.steps.assign(def.steps.size(), StepState{});
      break;
    }
    case EventType::kStepScheduled: {
      CallKind kind = kind_of(e.data);
      CallState& c = s.call(*step, kind);
      c.attempts = static_cast<uint32_t>(int_field(e.data, "attempt", c.attempts + 1));
      c.in_flight = true;
      c.retry_at = 0;
      c.scheduled_at = e.occurred_at;
      c.scheduled_seq = e.seq;
      c.resumed = false;
      c.attempt_deadline = int_field(e.data, "deadline");
      if (c.started_at == 0) c.started_at = e.occurred_at;
      if (kind == CallKind::kAction) {
        s.current = *step;
        if (def.pivot == step) s.pivot_sent = true;
      } else {
        s.steps[*step].compensation_started = true;
      }
      break;
    }
    case EventType::kStepSucceeded: {
      CallKind kind = kind_of(e.data);
      CallState& c = s.call(*step, kind);
      c.in_flight = false;
      c.succeeded = true;
      c.last_outcome = Outcome::kOk;
      c.reached = true;
      c.last_reached_outcome = Outcome::kOk;
      c.finished_at = e.occurred_at;
      c.error.clear();
      if (kind == CallKind::kAction) {
        auto out = e.data.find("output");
        s.steps[*step].output = out != e.data.end() ? *out : Json::object();
        if (def.pivot == step) s.pivot_succeeded = true;
      } else {
        ++s.compensation_cursor;
      }
      break;
    }
    case EventType::kStepFailed: {
      CallState& c = s.call(*step, kind_of(e.data));
      c.in_flight = false;
      const Outcome outcome = outcome_of(e.data).value_or(Outcome::kFailed);
      c.last_outcome = outcome;
      // An attempt that never left says nothing about those that did.
      if (bool_field(e.data, "sent", true)) {
        c.reached = true;
        c.last_reached_outcome = outcome;
      }
      if (outcome == Outcome::kTimeout || bool_field(e.data, "may_have_happened", false)) {
        c.may_have_happened = true;
        c.reached = true;
      }
      c.error = string_field(e.data, "error");
      c.finished_at = e.occurred_at;
      s.last_error = c.error;
      break;
    }
    case EventType::kRetryScheduled: {
      CallState& c = s.call(*step, kind_of(e.data));
      c.retry_at = int_field(e.data, "at");
      break;
    }
    case EventType::kCompensationStarted: {
      s.status = SagaStatus::kCompensating;
      for (auto& st : s.steps) st.action.retry_at = 0;  // forward work is abandoned
      s.compensation_plan.clear();
      s.compensation_cursor = 0;
      auto it = e.data.find("steps");
      if (it != e.data.end() && it->is_array()) {
        for (const auto& name : *it)
          if (name.is_string())
            if (auto idx = def.step_index(name.get_ref<const std::string&>())) s.compensation_plan.push_back(*idx);
      }
      std::string reason = string_field(e.data, "reason");
      if (!reason.empty()) s.last_error = reason;
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
      s.status = SagaStatus::kStuck;
      s.stuck_step = step;
      s.stuck_kind = kind_of(e.data);
      if (step) {
        CallState& c = s.call(*step, s.stuck_kind);
        c.retry_at = 0;
        if (s.stuck_kind == CallKind::kCompensate) s.steps[*step].compensation_gave_up = true;
      }
      std::string err = string_field(e.data, "error");
      if (!err.empty()) s.last_error = err;
      break;
    }
    case EventType::kCancelRequested:
      s.cancel_requested = true;
      break;
    case EventType::kOperatorRetried: {
      CallKind kind = kind_of(e.data);
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

// ---- Deciding -----------------------------------------------------------------

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
    Json data = {{"workflow", def_.name},
                 {"version", def_.version},
                 {"definition_hash", def_.hash},
                 {"input", def_.redact.empty() ? start.input : redact_input(def_, start.input)}};
    if (!start.idempotency_key.empty()) data["idempotency_key"] = start.idempotency_key;
    if (!start.correlation_id.empty()) data["correlation_id"] = start.correlation_id;
    if (!start.traceparent.empty()) data["traceparent"] = start.traceparent;
    std::optional<int64_t> deadline;
    if (def_.timeout) {
      deadline = in_.now + def_.timeout->count() * 1000;
      data["deadline"] = *deadline;
    }
    s_.id = start.saga_id;  // emit() stamps events with it
    emit(EventType::kSagaStarted, "", std::move(data));
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
                              StepResult::timeout("no answer within " + std::to_string(timeout.count()) + "ms")});
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

  void on(const CancelInput&) {
    if (!s_.started()) return refuse(Status::not_found("saga not found"));
    if (s_.status != SagaStatus::kRunning)
      return refuse(Status::failed_precondition(std::string("saga is ") + saga_status_name(s_.status) +
                                                ", only a running saga can be cancelled"));
    if (s_.pivot_sent) {
      return refuse(Status::failed_precondition("the pivot step \"" + def_.steps[*def_.pivot].name +
                                                "\" was already sent; the saga can only go forward"));
    }
    if (s_.cancel_requested) return;  // asked twice: the first request stands
    emit(EventType::kCancelRequested, "", Json::object());
    // A forward step in flight is waited for (see the notes); otherwise the
    // saga stops where it is and compensates now.
    if (!s_.steps[s_.current].action.in_flight) start_compensation("cancelled by request");
  }

  void on(const OperatorRetryInput&) {
    if (!s_.started()) return refuse(Status::not_found("saga not found"));
    if (s_.status != SagaStatus::kStuck || !s_.stuck_step)
      return refuse(Status::failed_precondition(std::string("saga is ") + saga_status_name(s_.status) +
                                                ", only a stuck saga can be retried"));
    size_t step = *s_.stuck_step;
    CallKind kind = s_.stuck_kind;
    emit(EventType::kOperatorRetried, def_.steps[step].name, {{"kind", call_kind_name(kind)}});
    schedule(step, kind);
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
      emit(EventType::kStepFailed, def_.steps[active->first].name,
           {{"kind", call_kind_name(active->second)},
            {"attempt", c.attempts},
            {"outcome", outcome_name(Outcome::kTimeout)},
            {"error", valid_utf8(reason)}},
           c.scheduled_seq);
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
      emit(EventType::kStepFailed, def_.steps[step].name,
           {{"kind", call_kind_name(kind)},
            {"attempt", c.attempts},
            {"outcome", "failed"},
            {"sent", false},
            {"error", valid_utf8("request not sent: " + rendered.status().message())}});
      return kind == CallKind::kAction ? give_up_forward(step) : stuck(step, kind);
    }
    uint32_t attempt = c.attempts + 1;
    // Informative: the executor arms the real timer when the request leaves.
    int64_t deadline = in_.now + cs.timeout.count() * 1000;
    emit(EventType::kStepScheduled, def_.steps[step].name,
         {{"kind", call_kind_name(kind)}, {"attempt", attempt}, {"deadline", deadline}});
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
      Json data = {{"kind", call_kind_name(kind)}, {"attempt", attempt}, {"output", r.output}};
      if (!r.note.empty()) data["note"] = valid_utf8(r.note);
      emit(EventType::kStepSucceeded, name, std::move(data), cause);
      if (kind == CallKind::kCompensate) return next_compensation();
      if (s_.cancel_requested && !s_.pivot_succeeded) return start_compensation("cancelled by request");
      if (deadline_passed()) return start_compensation("saga deadline exceeded");
      return run_forward(step + 1);
    }
    Json data = {{"kind", call_kind_name(kind)},
                 {"attempt", attempt},
                 {"outcome", outcome_name(r.outcome)},
                 {"error", valid_utf8(r.error)}};
    if (r.retry_after) data["retry_after_ms"] = r.retry_after->count();
    // An attempt re-sent after a restart may have reached the service the
    // first time: whatever the re-send says, it cannot prove it did not.
    if (!r.sent && !resumed) data["sent"] = false;
    if (resumed && r.outcome != Outcome::kTimeout) data["may_have_happened"] = true;
    emit(EventType::kStepFailed, name, std::move(data), cause);

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
      emit(EventType::kRetryScheduled, name, {{"kind", call_kind_name(kind)}, {"attempt", attempt + 1}, {"at", at}});
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
    start_compensation(!why.empty() ? why : "step \"" + st.name + "\" failed: " + c.error);
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
    Json names = Json::array();
    // Every step, last first, that may have happened is undone (needs_undo).
    for (size_t i = def_.steps.size(); i-- > 0;) {
      if (def_.steps[i].compensate && needs_undo(s_.steps[i].action)) names.push_back(def_.steps[i].name);
    }
    emit(EventType::kCompensationStarted, "", {{"reason", reason}, {"steps", names}});
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
         {{"kind", call_kind_name(kind)}, {"error", valid_utf8(reason.empty() ? c.error : reason, 1024)}});
    d_.commands.push_back(SettledCommand{SagaStatus::kStuck});
  }

  const Definition& def_;
  SagaState& s_;
  const Input& in_;
  Decision d_;
};

}  // namespace

Result<std::pair<Json, std::optional<std::string>>> render_request(const Definition& def, const SagaState& s,
                                                                    size_t step, CallKind kind) {
  const CallSpec& cs = kind == CallKind::kAction ? def.steps[step].action : *def.steps[step].compensate;
  if (!s.unredacted_input) {
    for (size_t i : cs.reads_redacted) {
      const Redaction& r = def.redact[i];
      if (had_value(s.input, r))
        return Status::failed_precondition("it reads the redacted input " + r.pointer +
                                           ", which usher holds in memory only and lost in a restart");
    }
  }
  RenderContext ctx;
  ctx.input = s.unredacted_input ? s.unredacted_input.get() : &s.input;
  ctx.saga_id = s.id;
  ctx.workflow = def.name;
  ctx.step_output = [&](std::string_view name) -> const Json* {
    auto idx = def.step_index(name);
    if (!idx || !s.steps[*idx].action.succeeded) return nullptr;
    return &s.steps[*idx].output;
  };
  if (kind == CallKind::kCompensate && !s.steps[step].action.succeeded) ctx.unknown_output_step = def.steps[step].name;
  auto body = render(cs.with, ctx);
  if (!body.is_ok()) return body.status();
  std::optional<std::string> path;
  if (cs.http) {
    auto p = render_path(cs.http->path, ctx);
    if (!p.is_ok()) return p.status();
    path = std::move(p.value());
  }
  return std::make_pair(std::move(body.value()), std::move(path));
}

Decision decide(const Definition& def, SagaState& state, const Input& input) {
  Decision d = Decider(def, state, input).run();
#ifndef NDEBUG
  if (state.started()) check_invariants(def, state);
#endif
  return d;
}

std::vector<Command> resume(const Definition& def, SagaState& s, int64_t now) {
  std::vector<Command> out;
  if (!s.started()) return out;
  if (s.status == SagaStatus::kStuck) {
    out.push_back(SettledCommand{SagaStatus::kStuck});
    return out;
  }
  if (is_terminal(s.status)) return out;
  if (s.status == SagaStatus::kRunning && s.deadline && !s.pivot_succeeded)
    out.push_back(TimerCommand{TimerKind::kDeadline, 0, CallKind::kAction, 0, *s.deadline});
  for (size_t i = 0; i < s.steps.size(); ++i) {
    for (CallKind kind : {CallKind::kAction, CallKind::kCompensate}) {
      CallState& c = s.call(i, kind);
      if (c.retry_at != 0) out.push_back(TimerCommand{TimerKind::kRetry, i, kind, c.attempts + 1, c.retry_at});
      if (!c.in_flight) continue;
      c.resumed = true;
      auto rendered = render_request(def, s, i, kind);
      if (!rendered.is_ok()) {
        // It rendered when it was scheduled, so a secret it read was lost in a
        // restart. The attempt may have been sent before the crash: its
        // outcome is unknown, as if it had timed out now.
        out.push_back(TimerCommand{TimerKind::kAttemptTimeout, i, kind, c.attempts, now});
        continue;
      }
      out.push_back(DispatchCommand{i, kind, c.attempts, std::move(rendered->first), std::move(rendered->second)});
    }
  }
  return out;
}

void check_invariants(const Definition& def, const SagaState& s) {
  (void)def;
  size_t in_flight = 0;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    for (CallKind kind : {CallKind::kAction, CallKind::kCompensate}) {
      const CallState& c = s.call(i, kind);
      // 2: a retry is pending only between attempts.
      assert(!(c.in_flight && c.retry_at != 0));
      if (c.in_flight) ++in_flight;
    }
  }
  // 1: one call at a time; none once settled (a cancel waits for the in-flight one).
  assert(in_flight <= 1);
  if (is_terminal(s.status) || s.status == SagaStatus::kStuck) assert(in_flight == 0);
  if (s.status == SagaStatus::kRunning) {
    // 3: steps before `current` all succeeded.
    for (size_t i = 0; i < s.current; ++i) assert(s.steps[i].action.succeeded);
  }
  if (s.status == SagaStatus::kCompensating) {
    // 4: nothing forward is active.
    for ([[maybe_unused]] const auto& st : s.steps) assert(!st.action.in_flight && st.action.retry_at == 0);
    // 6: a saga past its pivot never compensates.
    assert(!s.pivot_succeeded);
  }
  // 5: the plan runs last step first, each step once.
  for (size_t k = 1; k < s.compensation_plan.size(); ++k)
    assert(s.compensation_plan[k - 1] > s.compensation_plan[k]);
  if (s.status == SagaStatus::kCompleted)  // 7
    for ([[maybe_unused]] const auto& st : s.steps) assert(st.action.succeeded);
  if (s.status == SagaStatus::kCompensated)  // 7
    for ([[maybe_unused]] size_t i : s.compensation_plan) assert(s.steps[i].compensation.succeeded);
}

}  // namespace usher
