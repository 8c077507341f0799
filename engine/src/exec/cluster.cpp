// The runner as a node of a cluster (cluster_member.h, docs/cluster.md):
// which sagas are this node's, taking sagas over, and letting go of them.

#include <spdlog/spdlog.h>

#include "exec/saga_runner.h"
#include "machine/fold.h"
#include "view/saga_view.h"

namespace usher {

namespace {
// How often a waiter for a saga another node runs reads it again, and a
// reader of the feed reads it for events other nodes committed.
constexpr std::chrono::milliseconds kWatchEvery{100};
}  // namespace

void SagaRunner::join_cluster(ClusterMember& member, std::unique_ptr<NodeRegistry> claims) {
  cluster_ = &member;
  claims_ = std::move(claims);
  // Other nodes' events reach the feed without this node hearing of them.
  feed_.poll_every(kWatchEvery);
}

void SagaRunner::on_joined(int64_t node) {
  node_ = node;
}

// The lease of `node` is gone: whatever this node held may be another's by
// now. Every saga leaves memory (its waiters follow it in the log); the
// member joins again under a new id, and the sagas come back to whichever
// node claims them first.
void SagaRunner::on_lapsed(int64_t node) {
  if (node_ != node) return;
  node_ = 0;
  std::vector<std::pair<std::string, uint64_t>> held;
  for (auto& [id, saga] : sagas_) held.emplace_back(id, saga->generation);
  for (auto& [id, generation] : held) {
    drop(id, generation, Status::not_owner("node " + std::to_string(node) + "'s lease lapsed"));
  }
  spdlog::warn("cluster: node {} dropped {} sagas", node, held.size());
}

// Sagas this node claimed: folded and resumed as recovery does, the call in
// flight sent again with the same idempotency key.
void SagaRunner::take_over(std::vector<TakenSaga> taken) {
  if (stopping_) return;
  const int64_t now = clock_.now_us();
  std::vector<std::pair<std::string, std::vector<Command>>> to_run;
  for (TakenSaga& t : taken) {
    if (t.row.owner != node_) continue;  // claimed by an earlier incarnation of this node
    auto def = engine_reader_.definition(t.row.definition_hash);
    if (!def.is_ok()) {
      spdlog::error("cluster: saga {} not taken over: {}", t.row.id, def.status().message());
      continue;
    }
    auto state = fold(*def.value(), t.events);
    if (!state.is_ok()) {
      spdlog::error("cluster: saga {} not taken over: {}", t.row.id, state.status().message());
      continue;
    }
    if (auto it = sagas_.find(t.row.id); it != sagas_.end()) forget(t.row.id, *it->second, Status::ok());
    auto saga = std::make_unique<Saga>();
    saga->def = def.value();
    saga->state = std::move(state.value());
    saga->durable = true;
    saga->fence = t.row.fence;
    Saga& held = hold(t.row.id, std::move(saga));
    to_run.emplace_back(t.row.id, usher::resume(*held.def, held.state, now));
  }
  for (auto& [id, commands] : to_run) {
    auto it = sagas_.find(id);
    if (it != sagas_.end()) run_commands(*it->second, std::move(commands));
  }
}

// The saga is no longer this node's: nothing more is decided or sent for it
// here. Its waiters follow it in the log, wherever it runs now.
void SagaRunner::drop(const std::string& id, uint64_t generation, const Status& why) {
  Saga* saga = find(id, generation);
  if (!saga) return;
  saga->cancel_timers();
  auto waiters = std::move(saga->waiters);
  saga->waiters.clear();
  spdlog::debug("saga {}: no longer this node's: {}", id, why.message());
  forget(id, *saga, why);
  for (auto& w : waiters) {
    w.timer.reset();
    watch_log(id, std::move(w));
  }
}

// A waiter for a saga not in memory here: answered from the log once it is
// settled there or the wait ends, or handed to the saga if this node takes
// it over meanwhile.
void SagaRunner::watch_log(const std::string& id, Saga::Waiter waiter) {
  auto shared = std::make_shared<Saga::Waiter>(std::move(waiter));
  reads_.read_then([id](LogInspectorImpl& r) { return r.saga(id, std::nullopt); },
                   [this, id, shared](Result<Json> view) {
                     const auto now = std::chrono::steady_clock::now();
                     const bool found = view.is_ok();
                     const std::string status = found ? view->value("status", std::string()) : std::string();
                     const bool running = status == saga_status_name(SagaStatus::kRunning) ||
                                          status == saga_status_name(SagaStatus::kCompensating);
                     if (!found || !running || now >= shared->deadline || stopping_ || draining_) {
                       return shared->done(found ? std::move(view.value()) : Json(nullptr));
                     }
                     if (auto it = sagas_.find(id); it != sagas_.end()) {
                       const auto left = shared->deadline == std::chrono::steady_clock::time_point::max()
                                             ? Millis::max()
                                             : std::chrono::duration_cast<Millis>(shared->deadline - now);
                       return on_settled(id, left, std::move(shared->done));
                     }
                     auto timer = std::make_shared<boost::asio::steady_timer>(io_, kWatchEvery);
                     timer->async_wait([this, id, shared, timer](const boost::system::error_code& ec) {
                       if (ec) return;
                       watch_log(id, std::move(*shared));
                     });
                   });
}

// An operator acts here on a saga this node does not hold: in a cluster it
// is moved here first (a new fence; the node that held it drops it at its
// next append). False when the log has no unfinished saga by that id.
Result<bool> SagaRunner::claim_here(const std::string& id) {
  if (!claims_ || node_ == 0) return Status::unavailable("this node is joining the cluster again; try again");
  auto claimed = claims_->claim(node_, id);
  if (!claimed.is_ok()) return claimed.status();
  if (!claimed.value()) return false;
  if (Status taken = take_from_log(id, claimed.value()->fence); !taken.is_ok()) return taken;
  Saga& saga = *sagas_.at(id);
  if (!settled(saga.state.status)) run_commands(saga, usher::resume(*saga.def, saga.state, clock_.now_us()));
  return true;
}

}  // namespace usher
