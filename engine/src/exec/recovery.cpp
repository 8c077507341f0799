// Recovery: every unfinished saga is folded from its events and what it
// needs is running again (alone on the log; a node of a cluster takes sagas
// over instead, cluster.cpp) — the attempt in flight re-sent with the same
// idempotency key, retry and deadline timers re-armed (machine's resume()).

#include <spdlog/spdlog.h>

#include "exec/saga_runner.h"

namespace usher {

Status SagaRunner::recover() {
  if (recovered_) return Status::failed_precondition("resume() was already called");
  if (cluster_) {
    // In a cluster, recovery is taking over: the member claims the sagas of
    // nodes whose lease ended (this process's last incarnation among them)
    // and hands them to take_over() (cluster.cpp).
    recovered_ = true;
    return Status::ok();
  }
  const int64_t now = clock_.now_us();
  size_t recovered = 0, skipped = 0;
  std::vector<std::pair<std::string, std::vector<Command>>> to_run;
  Status st = engine_reader_.reader().for_each_unfinished([&](const SagaRow& row, std::vector<Event>&& events) {
    auto def = engine_reader_.definition(row.definition_hash);
    if (!def.is_ok()) {
      spdlog::error("recovery: saga {} skipped: {}", row.id, def.status().message());
      ++skipped;
      return;
    }
    auto state = fold(*def.value(), events);
    if (!state.is_ok()) {
      spdlog::error("recovery: saga {} skipped: {}", row.id, state.status().message());
      ++skipped;
      return;
    }
    auto saga = std::make_unique<Saga>();
    saga->def = def.value();
    saga->state = std::move(state.value());
    saga->durable = true;
    Saga& held = hold(row.id, std::move(saga));
    to_run.emplace_back(row.id, usher::resume(*held.def, held.state, now));
    ++recovered;
  });
  if (!st.is_ok()) return st;
  recovered_ = true;
  // Commands run once every saga is in memory: a command may look at another
  // saga (a call waiting for a slot of its service).
  for (auto& [id, commands] : to_run) {
    auto it = sagas_.find(id);
    if (it != sagas_.end()) run_commands(*it->second, std::move(commands));
  }
  if (recovered || skipped) spdlog::info("recovery: {} unfinished sagas resumed, {} skipped", recovered, skipped);
  return Status::ok();
}

}  // namespace usher
