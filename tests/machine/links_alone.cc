// The state machine links alone: this program uses usher_machine (and the
// model it builds on) and nothing else, so a dependency of the machine on
// SQLite, Boost, the store, the views or the executor fails the build here
// (issue 12: purity enforced by the build, not by discipline). It also runs
// one saga through decide() and fold() to show the machine works by itself.
#include <cstdio>

#include "machine/machine.h"
#include "model/loader.h"

namespace {

const char* const kTwoSteps = R"(
saga: alone
version: 1
services:
  seats: { local: {} }
  payments: { local: {} }
steps:
  - name: reserve
    call: seats.hold
    compensate: { call: seats.release }
  - name: pay
    type: pivot
    call: payments.charge
)";

int fail(const char* what) {
  std::fprintf(stderr, "links_alone: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  using namespace usher;
  LoadResult loaded = load_definition(kTwoSteps, "alone.yaml");
  if (!loaded.ok()) {
    for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.to_string().c_str());
    return fail("the workflow does not load");
  }
  const Definition& def = *loaded.definition;
  SagaState state;
  std::vector<Event> log;
  auto feed = [&](Input in) {
    Decision d = decide(def, state, in);
    log.insert(log.end(), d.events.begin(), d.events.end());
    return d;
  };
  int64_t now = 1'000'000;
  feed(Input{now, 0.5, StartInput{"s-1", Json::object(), "", "", ""}});
  feed(Input{now += 1000, 0.5, ResultInput{0, CallKind::kAction, 1, StepResult::ok(Json{{"holdId", "h-1"}})}});
  Decision last = feed(Input{now += 1000, 0.5, ResultInput{1, CallKind::kAction, 1, StepResult::ok(Json::object())}});
  if (state.status != SagaStatus::kCompleted) return fail("the saga did not complete");
  if (last.commands.empty() || !std::holds_alternative<SettledCommand>(last.commands.back()))
    return fail("completion did not settle the saga");
  Result<SagaState> folded = fold(def, log);
  if (!folded.is_ok() || folded->status != SagaStatus::kCompleted || folded->last_seq != state.last_seq)
    return fail("the fold of the log is not the decided state");
  std::printf("links_alone: %zu events, completed\n", log.size());
  return 0;
}
