// Thousands of random fault schedules over the shipped workflows, seeded and
// reproducible, each checked against the saga invariants. A failure prints the
// seed: rerun with USHER_PROPERTY_SEED=<seed> to replay just that schedule.
//
// The oracle for what gets compensated is written from docs/semantics.md's
// words, over what the schedule itself did to each attempt, not from the
// state machine's bookkeeping: "every step whose action was sent and did not
// end in a definite business failure", where an attempt that timed out or was
// in flight at a restart "may have happened" whatever later attempts say, and
// an attempt that never reached the service did not happen.
#include <doctest/doctest.h>

#include <cstdlib>
#include <optional>
#include <random>

#include "machine/sim.h"
#include "machine/workflow_samples.h"

using namespace usher;
using namespace usher::test;

namespace {

// What the schedule did to one attempt of an action; kResolvedFailed: an
// operator stated that the action failed.
enum class Told { kOk, kRefused, kTransient, kNeverLeft, kNoAnswer, kResolvedFailed };

// docs/semantics.md, applied to the attempts of one action in order.
bool design_says_compensate(const std::vector<Told>& attempts, bool in_flight_at_a_restart) {
  bool sent = false, may_have_happened = in_flight_at_a_restart, succeeded = false;
  std::optional<Told> last_sent;
  for (Told t : attempts) {
    if (t == Told::kResolvedFailed) return false;  // the operator's word is final
    if (t == Told::kNeverLeft) continue;           // did not happen
    sent = true;
    last_sent = t;
    if (t == Told::kNoAnswer) may_have_happened = true;
    if (t == Told::kOk) succeeded = true;
  }
  if (succeeded || may_have_happened) return true;
  const bool ended_in_business_failure = last_sent == Told::kRefused;
  return sent && !ended_in_business_failure;
}

struct ScheduleResult {
  std::string violation;  // empty when every invariant held
  SagaStatus status = SagaStatus::kRunning;
};

// Runs one saga under a random schedule of results, timeouts, retries, cancels,
// deadline expiry and operator retries. After `calm_after` steps every call
// succeeds, so a correct machine must then finish.
ScheduleResult run_schedule(const DefinitionPtr& def, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  const auto outputs = sample_outputs(*def);
  Sim sim(def);
  sim.jitter = 0.3;
  sim.start(def->input_schema ? sample_for_schema(*def->input_schema) : Json::object());
  const int calm_after = 200;
  std::vector<std::vector<Told>> told(def->steps.size());
  std::vector<bool> resumed_once(def->steps.size(), false);
  // A restart loses the secrets of a workflow that redacts; those are tested
  // in redaction_test.cpp, so only the others restart here.
  const bool may_restart = def->redact.empty();

  for (int i = 0; i < 2000 && !is_terminal(sim.state.status); ++i) {
    bool calm = i >= calm_after;
    sim.now += std::uniform_int_distribution<int64_t>(0, 3 * kSecond)(rng);
    SagaState& s = sim.state;
    if (s.status == SagaStatus::kStuck) {
      // An operator acts: mostly retry; sometimes states the outcome of the
      // stuck call, or ends the saga.
      const size_t step = *s.stuck_step;
      const CallKind kind = s.stuck_kind;
      const std::string& name = def->steps[step].name;
      const double roll = calm ? 1.0 : std::uniform_real_distribution<double>(0, 1)(rng);
      if (roll < 0.08) {
        Decision d = sim.feed(Input{0, 0, TerminateInput{"ended by the schedule", "token:test"}});
        if (d.refused || s.status != SagaStatus::kTerminated) return {"terminate of a stuck saga refused", s.status};
        if (dispatch_of(d)) return {"terminate sent a call", s.status};
        break;
      }
      if (roll < 0.30) {
        const bool succeeded = chance(0.6);
        Json out = kind == CallKind::kAction ? outputs.at(name) : Json::object();
        Decision d = sim.feed(Input{0, 0, OperatorResolveInput{name, succeeded, out, {"token:test", "by hand"}}});
        // Refused exactly where the outcome cannot move the saga.
        const bool cannot = !succeeded && (kind == CallKind::kCompensate ||
                                           def->steps[step].type == StepType::kRetriable || s.pivot_succeeded);
        if (d.refused.has_value() != cannot)
          return {"resolve " + std::string(succeeded ? "succeeded" : "failed") + " of \"" + name + "\" " +
                      (cannot ? "accepted" : "refused: " + d.refused->message()),
                  s.status};
        if (!d.refused && kind == CallKind::kAction) told[step].push_back(succeeded ? Told::kOk : Told::kResolvedFailed);
        if (!d.refused) continue;
      }
      sim.operator_retry();
      continue;
    }
    if (!calm && may_restart && chance(0.02)) {
      // The process dies and comes back: the state is folded from the log
      // alone, and the call in flight is sent again.
      sim.state = fold(*def, sim.log).value();
      resume(*def, sim.state, sim.now);
      for (size_t step = 0; step < s.steps.size(); ++step)
        if (s.steps[step].action.in_flight) resumed_once[step] = true;
    }
    if (!calm && chance(0.03)) sim.cancel();
    if (!calm && chance(0.03) && s.deadline) sim.deadline();
    if (is_terminal(s.status) || s.status == SagaStatus::kStuck) continue;

    // Find the one active call: in flight, or waiting for its retry.
    bool acted = false;
    for (size_t step = 0; step < s.steps.size() && !acted; ++step) {
      for (CallKind kind : {CallKind::kAction, CallKind::kCompensate}) {
        const CallState& c = s.call(step, kind);
        const std::string& name = def->steps[step].name;
        if (c.retry_at != 0) {
          sim.retry_timer(name, kind);
          acted = true;
          break;
        }
        if (!c.in_flight) continue;
        double roll = calm ? 0.0 : std::uniform_real_distribution<double>(0, 1)(rng);
        Told what;
        if (roll < 0.55) {
          Json out = kind == CallKind::kAction ? outputs.at(name) : Json::object();
          sim.result(name, StepResult::ok(out), kind);
          what = Told::kOk;
        } else if (roll < 0.65) {
          sim.result(name, StepResult::failed("refused"), kind);
          what = Told::kRefused;
        } else if (roll < 0.77) {
          sim.result(name, StepResult::transient("503", chance(0.2) ? std::optional(Millis(1500)) : std::nullopt),
                     kind);
          what = Told::kTransient;
        } else if (roll < 0.87) {
          sim.result(name, StepResult::not_sent("connection refused"), kind);
          what = Told::kNeverLeft;
        } else {
          sim.attempt_timeout(name, kind);
          what = Told::kNoAnswer;
        }
        if (kind == CallKind::kAction) told[step].push_back(what);
        acted = true;
        break;
      }
    }
    if (!acted && !is_terminal(s.status)) return {"nothing in flight and nothing pending while " +
                                                  std::string(saga_status_name(s.status)), s.status};
  }

  // ---- invariants over the log -----------------------------------------------
  const SagaState& s = sim.state;
  if (!is_terminal(s.status)) return {"did not finish once every call succeeded", s.status};
  if (saga_to_json(*def, fold(*def, sim.log).value()) != sim.view()) return {"state differs from the fold of its log", s.status};

  std::vector<int> action_succeeded(def->steps.size(), 0);
  std::vector<int> compensated(def->steps.size(), 0);
  int last_compensated = static_cast<int>(def->steps.size());
  bool pivot_done = false;
  for (const Event& e : sim.log) {
    if (e.step.empty()) {
      if (e.type == EventType::kCompensationStarted && pivot_done) return {"compensation after the pivot", s.status};
      if (e.type == EventType::kCompensationStarted) last_compensated = static_cast<int>(def->steps.size());
      continue;
    }
    int idx = static_cast<int>(*def->step_index(e.step));
    bool comp = e.data.value("kind", "") == "compensate";
    if (e.type == EventType::kStepScheduled && !comp && action_succeeded[idx])
      return {"action of \"" + e.step + "\" sent again after its success was logged", s.status};
    // A call an operator resolved as succeeded counts as one that succeeded.
    const bool resolved_ok = e.type == EventType::kOperatorResolved && e.data.value("outcome", "") == "succeeded";
    if ((e.type == EventType::kStepSucceeded || resolved_ok) && !comp) {
      ++action_succeeded[idx];
      if (def->pivot && static_cast<size_t>(idx) == *def->pivot) pivot_done = true;
    }
    if ((e.type == EventType::kStepSucceeded || resolved_ok) && comp) {
      if (idx >= last_compensated) return {"compensations out of reverse order at \"" + e.step + "\"", s.status};
      last_compensated = idx;
      if (++compensated[idx] > 1) return {"\"" + e.step + "\" compensated twice", s.status};
    }
  }
  if (s.status == SagaStatus::kCompleted) {
    for (size_t i = 0; i < def->steps.size(); ++i)
      if (action_succeeded[i] != 1) return {"completed without step \"" + def->steps[i].name + "\"", s.status};
    for (int n : compensated)
      if (n) return {"a completed saga compensated a step", s.status};
  } else if (s.status == SagaStatus::kCompensated) {
    // Compensated: exactly the steps docs/semantics.md says may have happened and
    // that can be undone.
    for (size_t i = 0; i < def->steps.size(); ++i) {
      bool should = def->steps[i].compensate && design_says_compensate(told[i], resumed_once[i]);
      if (should != (compensated[i] == 1))
        return {"step \"" + def->steps[i].name + "\" compensated " + std::to_string(compensated[i]) +
                    " times; expected " + (should ? "1" : "0"),
                s.status};
      if (def->pivot && i >= *def->pivot && compensated[i]) return {"a step at or after the pivot was compensated", s.status};
    }
  }
  return {"", s.status};
}

}  // namespace

TEST_CASE("random fault schedules over the shipped workflows keep every saga invariant") {
  auto workflows = shipped_workflows();
  uint64_t first = 1, count = 3000;
  if (const char* one = std::getenv("USHER_PROPERTY_SEED")) {
    first = std::strtoull(one, nullptr, 10);
    count = 1;
  }
  std::map<std::string, int> by_status;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const DefinitionPtr& def = workflows[seed % workflows.size()];
    auto [violation, status] = run_schedule(def, seed);
    if (!violation.empty()) FAIL("seed " << seed << " (" << def->name << "): " << violation);
    ++by_status[saga_status_name(status)];
  }
  MESSAGE("schedules: " << count << ", completed " << by_status["completed"] << ", compensated "
                        << by_status["compensated"] << ", terminated " << by_status["terminated"]);
  // The schedules must exercise both endings, or they prove little.
  CHECK(by_status["completed"] > static_cast<int>(count / 10));
  CHECK(by_status["compensated"] > static_cast<int>(count / 10));
  CHECK(by_status["terminated"] > 0);
}
