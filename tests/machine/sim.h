// A simulated world for the state machine: a clock the test moves by hand, a
// log of every event decided, and helpers to feed results and fire timers.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "view/saga_view.h"
#include "machine/invariants.h"
#include "machine/machine.h"
#include "machine/render.h"
#include "machine/retry_delay.h"
#include "usher/definition.h"

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& v) {
    std::string out = "{";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return (out + "}").c_str();
  }
};
}  // namespace doctest

namespace usher::test {

inline DefinitionPtr must_load(const std::string& yaml) {
  LoadResult r = load_definition(yaml, "test.yaml");
  if (!r.ok()) {
    for (const auto& d : r.diagnostics) MESSAGE(d.to_string());
    FAIL("test workflow does not load");
  }
  return r.definition;
}

// reserve -> pay -> confirm (pivot) -> notify (retriable), as in docs/workflow-format.md.
inline const char* kBookingYaml = R"(
saga: booking
version: 1
services:
  seats:    { http: { url: "http://127.0.0.1:1" } }
  payments: { http: { url: "http://127.0.0.1:2" } }
  tickets:  { http: { url: "http://127.0.0.1:3" } }
  notifier: { http: { url: "http://127.0.0.1:4" } }
timeout: 1m
defaults:
  timeout: 5s
  retry: { attempts: 3, backoff: 200ms, multiplier: 2, max_backoff: 10s }
  compensation_retry: { attempts: 3, backoff: 1s, multiplier: 2, max_backoff: 1m }
steps:
  - name: reserve
    call: seats.hold
    with: { concertId: "${input.concertId}", seat: "${input.seat}" }
    compensate:
      call: seats.release
      with: { holdId: "${steps.reserve.output.holdId}" }
  - name: pay
    call: payments.charge
    with: { amount: "${input.amount}", reference: "${saga.id}" }
    compensate:
      call: payments.refund
      with: { paymentId: "${steps.pay.output.paymentId}" }
  - name: confirm
    type: pivot
    call: tickets.issue
    with: { holdId: "${steps.reserve.output.holdId}", paymentId: "${steps.pay.output.paymentId}" }
  - name: notify
    type: retriable
    call: notifier.send
    with: { ticketId: "${steps.confirm.output.ticketId}" }
    retry: { attempts: unlimited, backoff: 1s, max_backoff: 5m }
)";

constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kMs = 1'000;

class Sim {
 public:
  explicit Sim(DefinitionPtr def) : def_(std::move(def)) {}

  Decision feed(Input in) {
    in.now = now;
    in.jitter = jitter;
    Decision d = decide(*def_, state, in);
    for (const auto& e : d.events) log.push_back(e);
    return d;
  }
  Decision start(Json input, std::string key = "") {
    return feed(Input{0, 0, StartInput{"saga-1", std::move(input), std::move(key), "corr-1", ""}});
  }
  // The result of the attempt now in flight for `step`.
  Decision result(const std::string& step, StepResult r, CallKind kind = CallKind::kAction) {
    size_t i = index(step);
    return feed(Input{0, 0, ResultInput{i, kind, state.call(i, kind).attempts, std::move(r)}});
  }
  Decision ok(const std::string& step, Json out = Json::object()) { return result(step, StepResult::ok(std::move(out))); }
  Decision comp_ok(const std::string& step) { return result(step, StepResult::ok({}), CallKind::kCompensate); }
  Decision retry_timer(const std::string& step, CallKind kind = CallKind::kAction) {
    size_t i = index(step);
    now = std::max(now, state.call(i, kind).retry_at);
    return feed(Input{0, 0, TimerInput{TimerKind::kRetry, i, kind, state.call(i, kind).attempts + 1}});
  }
  Decision attempt_timeout(const std::string& step, CallKind kind = CallKind::kAction) {
    size_t i = index(step);
    now = std::max(now, state.call(i, kind).attempt_deadline);
    return feed(Input{0, 0, TimerInput{TimerKind::kAttemptTimeout, i, kind, state.call(i, kind).attempts}});
  }
  Decision deadline() {
    now = std::max(now, state.deadline.value_or(now));
    return feed(Input{0, 0, TimerInput{TimerKind::kDeadline, 0, CallKind::kAction, 0}});
  }
  Decision cancel() { return feed(Input{0, 0, CancelInput{}}); }
  Decision operator_retry() { return feed(Input{0, 0, OperatorRetryInput{}}); }

  size_t index(const std::string& step) const {
    auto i = def_->step_index(step);
    REQUIRE(i.has_value());
    return *i;
  }
  std::string step_status(const std::string& step) const {
    return step_status_name(usher::step_status(state, index(step)));
  }
  Json view() const { return saga_to_json(*def_, state); }

  // Every event type of the log, as "Type" or "Type step[/compensate]".
  std::vector<std::string> trace() const {
    std::vector<std::string> out;
    for (const auto& e : log) {
      std::string s = event_type_name(e.type);
      if (!e.step.empty()) s += " " + e.step;
      if (e.data.value("kind", "") == "compensate") s += "/compensate";
      out.push_back(s);
    }
    return out;
  }

  const Definition& def() const { return *def_; }

  SagaState state;
  std::vector<Event> log;
  int64_t now = 1'800'000'000 * kSecond;
  double jitter = 0.5;

 private:
  DefinitionPtr def_;
};

// What a restart would run for the saga of `sim`: its log folded afresh.
inline std::vector<Command> resume_folded(const Sim& sim, int64_t now) {
  SagaState state = fold(sim.def(), sim.log).value();
  return resume(sim.def(), state, now);
}

inline std::vector<std::string> types(const Decision& d) {
  std::vector<std::string> out;
  for (const auto& e : d.events) out.push_back(event_type_name(e.type));
  return out;
}

inline const DispatchCommand* dispatch_of(const Decision& d) {
  for (const auto& c : d.commands)
    if (auto* p = std::get_if<DispatchCommand>(&c)) return p;
  return nullptr;
}

inline const TimerCommand* timer_of(const Decision& d, TimerKind kind) {
  for (const auto& c : d.commands)
    if (auto* p = std::get_if<TimerCommand>(&c); p && p->kind == kind) return p;
  return nullptr;
}

inline bool settled_with(const Decision& d, SagaStatus s) {
  for (const auto& c : d.commands)
    if (auto* p = std::get_if<SettledCommand>(&c); p && p->status == s) return true;
  return false;
}

}  // namespace usher::test
