// Operator actions: cancel, retry, resolve and terminate, on a saga in memory
// or on a stuck one read back from the log.

#include <type_traits>

#include "exec/saga_runner.h"

namespace usher {

namespace {
struct Verb {
  const char* operator()(const CancelInput&) const { return "cancel"; }
  const char* operator()(const OperatorRetryInput&) const { return "retry"; }
  const char* operator()(const OperatorResolveInput&) const { return "resolve"; }
  const char* operator()(const TerminateInput&) const { return "terminate"; }
};
const char* verb(const OperatorAction& action) { return std::visit(Verb{}, action); }
}  // namespace

void SagaRunner::operate(const std::string& id, OperatorAction action, std::function<void(Result<Json>)> reply) {
  if (stopping_ || draining_) return reply(Status::unavailable("the engine is shutting down"));
  auto it = sagas_.find(id);
  if (it == sagas_.end() && cluster_) {
    // Perhaps another node's: moved here to act on it (cluster.cpp).
    auto claimed = claim_here(id);
    if (!claimed.is_ok()) return reply(claimed.status());
    it = sagas_.find(id);
  }
  if (it == sagas_.end()) {
    // Not in memory: finished, stuck, or does not exist.
    auto view = view_of(id);
    if (!view.is_ok()) return reply(view.status());
    const std::string status = view->value("status", std::string("finished"));
    if (status != saga_status_name(SagaStatus::kStuck)) {
      return reply(Status::failed_precondition("saga is " + status + "; nothing to " + verb(action)));
    }
    if (Status taken = take_from_log(id); !taken.is_ok()) return reply(taken);
    it = sagas_.find(id);
  }
  std::visit([&](auto what) { process(*it->second, input(std::move(what)), reply); }, std::move(action));
  // Refused (cancel of a stuck saga, resolve of another step): it goes back
  // to the log only.
  it = sagas_.find(id);
  if (it != sagas_.end() && it->second->durable && !it->second->append_failed &&
      it->second->state.status == SagaStatus::kStuck && it->second->waiters.empty())
    forget(id, *it->second, Status::ok());
}

// Brings a saga that is not in memory (a stuck one, or in a cluster one just
// claimed under `fence`) back from the log, to act on it. Its secrets were
// held in memory only and are gone.
Status SagaRunner::take_from_log(const std::string& id, int64_t fence) {
  auto loaded = engine_reader_.load(id, std::nullopt);
  if (!loaded.is_ok()) return loaded.status();
  auto saga = std::make_unique<Saga>();
  saga->def = loaded->first;
  saga->state = std::move(loaded->second);
  saga->durable = true;
  saga->fence = fence;
  hold(id, std::move(saga));
  return Status::ok();
}

}  // namespace usher
