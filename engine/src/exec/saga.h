// A saga held in memory by the executor, on the engine thread only: its
// definition, its state (the fold of its durable events, or ahead of them by
// the group being appended), its timers and who waits for it.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <vector>

#include "machine/saga_state.h"
#include "usher/status.h"

namespace usher {

struct Saga {
  DefinitionPtr def;
  SagaState state;
  uint64_t generation = 0;  // changes when the saga is reloaded; stale callbacks compare it
  bool durable = false;     // SagaStarted is committed
  int64_t fence = 0;        // in a cluster: the fence this node owns the saga under (cluster_member.h)
  // An append of this saga failed: the state ran ahead of the log. Inputs are
  // dropped until the saga is reloaded from what is durable, so nothing is
  // decided (or sent) on top of events the log does not hold.
  bool append_failed = false;
  std::vector<std::function<void(Status)>> on_durable;  // duplicate starts waiting for the first
  std::unique_ptr<boost::asio::steady_timer> attempt_timer;
  std::unique_ptr<boost::asio::steady_timer> retry_timer;
  std::unique_ptr<boost::asio::steady_timer> deadline_timer;
  struct Waiter {
    uint64_t token;
    std::function<void(Json)> done;
    std::unique_ptr<boost::asio::steady_timer> timer;
    std::chrono::steady_clock::time_point deadline;  // max(): waits as long as it takes
  };
  std::list<Waiter> waiters;  // on_settled() callers, answered once the settlement is durable

  void cancel_timers() {
    for (auto* t : {&attempt_timer, &retry_timer, &deadline_timer})
      if (*t) (*t)->cancel();
  }
};

inline bool settled(SagaStatus s) { return is_terminal(s) || s == SagaStatus::kStuck; }

}  // namespace usher
