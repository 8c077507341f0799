// Thousands of random fault schedules over the shipped workflows, seeded and
// reproducible, each checked against the saga invariants. A failure prints the
// seed: rerun with USHER_PROPERTY_SEED=<seed> to replay just that schedule.
#include <doctest/doctest.h>

#include <cstdlib>
#include <random>

#include "core/sim.h"
#include "core/workflow_samples.h"

using namespace usher;
using namespace usher::test;

namespace {

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

  for (int i = 0; i < 2000 && !is_terminal(sim.state.status); ++i) {
    bool calm = i >= calm_after;
    sim.now += std::uniform_int_distribution<int64_t>(0, 3 * kSecond)(rng);
    SagaState& s = sim.state;
    if (s.status == SagaStatus::kStuck) {
      sim.operator_retry();
      continue;
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
        if (roll < 0.6) {
          Json out = kind == CallKind::kAction ? outputs.at(name) : Json::object();
          sim.result(name, StepResult::ok(out), kind);
        } else if (roll < 0.7) {
          sim.result(name, StepResult::failed("refused"), kind);
        } else if (roll < 0.85) {
          sim.result(name, StepResult::transient("503", chance(0.2) ? std::optional(Millis(1500)) : std::nullopt),
                     kind);
        } else {
          sim.attempt_timeout(name, kind);
        }
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
  if (saga_to_json(*def, fold(*def, sim.log)) != sim.view()) return {"state differs from the fold of its log", s.status};

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
    if (e.type == EventType::kStepSucceeded && !comp) {
      ++action_succeeded[idx];
      if (def->pivot && static_cast<size_t>(idx) == *def->pivot) pivot_done = true;
    }
    if (e.type == EventType::kStepSucceeded && comp) {
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
  } else {
    // Compensated: exactly the steps that may have happened and can be undone.
    for (size_t i = 0; i < def->steps.size(); ++i) {
      const CallState& a = s.steps[i].action;
      bool may_have_happened = a.attempts > 0 && (a.succeeded || a.last_outcome != usher::Outcome::kFailed);
      bool should = may_have_happened && def->steps[i].compensate;
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
                        << by_status["compensated"]);
  // The schedules must exercise both endings, or they prove little.
  CHECK(by_status["completed"] > static_cast<int>(count / 10));
  CHECK(by_status["compensated"] > static_cast<int>(count / 10));
}
