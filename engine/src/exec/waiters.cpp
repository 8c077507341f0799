// Waiters: callers of on_settled() (the API's ?wait=, Engine::wait()). A saga
// in memory that looks settled may not be durably so yet: its waiters are
// answered by settle(), once it is.

#include "exec/saga_runner.h"
#include "view/saga_view.h"

namespace usher {

void SagaRunner::on_settled(const std::string& id, Millis timeout, std::function<void(Json)> done) {
  auto it = sagas_.find(id);
  const auto deadline = timeout == Millis::max() ? std::chrono::steady_clock::time_point::max()
                                                 : std::chrono::steady_clock::now() + timeout;
  if (draining_ && it != sagas_.end()) return done(saga_to_json(*it->second->def, it->second->state));
  if (it == sagas_.end() && cluster_ && !draining_) {
    // Perhaps running on another node: followed in the log (cluster.cpp).
    return watch_log(id, Saga::Waiter{++waiter_token_, std::move(done), nullptr, deadline});
  }
  if (it == sagas_.end()) {
    // Settled (or unknown): as the log has it, read off the engine thread.
    return reads_.read_then([id](LogInspectorImpl& r) { return r.saga(id, std::nullopt); },
                            [done = std::move(done)](Result<Json> view) {
                              done(view.is_ok() ? std::move(view.value()) : Json(nullptr));
                            });
  }
  Saga& saga = *it->second;
  const uint64_t token = ++waiter_token_;
  Saga::Waiter w{token, std::move(done), nullptr, deadline};
  if (timeout != Millis::max()) {
    w.timer = std::make_unique<boost::asio::steady_timer>(io_, timeout);
    w.timer->async_wait([this, id, token](const boost::system::error_code& ec) {
      if (ec) return;
      auto it = sagas_.find(id);
      if (it == sagas_.end()) return;
      auto& list = it->second->waiters;
      for (auto w = list.begin(); w != list.end(); ++w) {
        if (w->token != token) continue;
        auto answer = std::move(w->done);
        list.erase(w);
        answer(saga_to_json(*it->second->def, it->second->state));
        return;
      }
    });
  }
  saga.waiters.push_back(std::move(w));
}

void SagaRunner::answer_waiters() {
  for (auto& [id, saga] : sagas_) {
    auto waiters = std::move(saga->waiters);
    saga->waiters.clear();
    for (auto& w : waiters) w.done(saga_to_json(*saga->def, saga->state));
  }
  feed_.release();
}

}  // namespace usher
