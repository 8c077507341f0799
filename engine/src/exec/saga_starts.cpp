// Starting a saga: idempotent by key, refused under back-pressure, answered
// once SagaStarted is durable.

#include <chrono>

#include "exec/saga_runner.h"
#include "view/saga_view.h"

namespace usher {

namespace {

using Found = Result<std::optional<std::pair<std::string, Json>>>;

// Reads the saga a key was used for, as the log has it (off the engine thread).
auto saga_by_key(std::string key) {
  return [key = std::move(key)](LogInspectorImpl& r) -> Found {
    auto id = r.reader().saga_id_by_idempotency_key(key);
    if (!id.is_ok()) return id.status();
    if (!id.value()) return std::optional<std::pair<std::string, Json>>();
    auto view = r.saga(**id, std::nullopt);
    if (!view.is_ok()) return view.status();
    return std::optional(std::make_pair(**id, std::move(view.value())));
  };
}

}  // namespace

void SagaRunner::start(DefinitionPtr def, StartRequest req, std::function<void(Result<StartResponse>)> done,
                       bool looked_up) {
  if (stopping_ || draining_) return done(Status::unavailable("the engine is shutting down"));
  if (!recovered_) return done(Status::failed_precondition("call resume() before starting sagas"));
  // Owns copies of what it needs: it may run after start() has returned,
  // when the first start with this key becomes durable.
  auto reply_existing = [workflow = req.workflow, key = req.idempotency_key](
                            const std::string& id, const Json& view,
                            const std::function<void(Result<StartResponse>)>& reply) {
    if (view.value("workflow", "") != workflow) {
      return reply(Status::already_exists("idempotency key \"" + key + "\" was already used for saga " + id +
                                          " of workflow \"" + view.value("workflow", "") + "\""));
    }
    reply(StartResponse{id, false, view});
  };
  if (!req.idempotency_key.empty()) {
    if (auto it = key_index_.find(req.idempotency_key); it != key_index_.end()) {
      Saga& existing = *sagas_.at(it->second);
      std::string id = it->second;
      if (existing.durable) return reply_existing(id, saga_to_json(*existing.def, existing.state), done);
      // The first start with this key is not durable yet: answer when it is.
      existing.on_durable.push_back([this, id, reply_existing, done = std::move(done)](Status st) {
        if (!st.is_ok()) return done(st);
        auto view = view_of(id);
        if (!view.is_ok()) return done(view.status());
        reply_existing(id, view.value(), done);
      });
      return;
    }
    if (!looked_up) {
      // Not in memory: the log may have it. Read off the engine thread, then
      // decide again here (a start with the same key may have come meanwhile).
      reads_.read_then(saga_by_key(req.idempotency_key), [this, def = std::move(def), req = std::move(req),
                                                          done = std::move(done), reply_existing](Found found) mutable {
        if (stopping_ || draining_) return done(Status::unavailable("the engine is shutting down"));
        if (!found.is_ok()) return done(found.status());
        if (found.value()) return reply_existing(found.value()->first, found.value()->second, done);
        start(std::move(def), std::move(req), std::move(done), true);
      });
      return;
    }
  }

  if (cluster_ && node_ == 0) return done(Status::unavailable("this node is joining the cluster again; try again"));
  if (Status refused = log_health_.admit(std::chrono::steady_clock::now()); !refused.is_ok()) return done(refused);
  if (Status refused = admit_load(); !refused.is_ok()) return done(refused);

  const int64_t now = clock_.now_us();
  const std::string id = ids_.next(now);
  auto owned = std::make_unique<Saga>();
  owned->def = std::move(def);
  owned->fence = cluster_ ? 1 : 0;  // a new saga is its first owner's from fence 1
  Saga& saga = hold(id, std::move(owned));
  // The key is indexed now, before SagaStarted is durable: a second start
  // with it waits for the first (on_durable above).
  if (!req.idempotency_key.empty()) key_index_[req.idempotency_key] = id;
  Decision d = decide(*saga.def, saga.state,
                      Input{now, jitter(),
                            StartInput{id, std::move(req.input), req.idempotency_key, req.correlation_id,
                                       req.traceparent}});
  commit(saga, std::move(d), [this, id, key = req.idempotency_key, reply_existing, done = std::move(done)](Status st) {
    auto it = sagas_.find(id);
    if (!st.is_ok()) {
      // Nothing of this saga is in the log; it never existed.
      if (it != sagas_.end()) forget(id, *it->second, st);
      if (st.code() == StatusCode::kAlreadyExists && !key.empty()) {
        // Another node started a saga with this key first: that one is the answer.
        return reads_.read_then(saga_by_key(key), [reply_existing, st, done](Found found) {
          if (!found.is_ok()) return done(found.status());
          if (!found.value()) return done(Status::unavailable("saga log: " + st.message()));
          reply_existing(found.value()->first, found.value()->second, done);
        });
      }
      return done(Status::unavailable("saga log: " + st.message()));
    }
    if (it == sagas_.end()) {
      // Durable, then dropped before this ran: this node's lease lapsed. The
      // saga is in the log and another node (or this one, rejoined) runs it.
      auto view = view_of(id);
      if (!view.is_ok()) return done(view.status());
      return done(StartResponse{id, true, std::move(view.value())});
    }
    Saga& s = *it->second;
    s.durable = true;
    done(StartResponse{id, true, saga_to_json(*s.def, s.state)});
    auto waiting = std::move(s.on_durable);
    for (auto& w : waiting) w(Status::ok());
  });
}

// Back-pressure: a new saga is refused (503 + Retry-After at the API) while
// too many are held in memory or the store's writer is too far behind. Sagas
// already acknowledged are never dropped or slowed by this.
Status SagaRunner::admit_load() const {
  if (sagas_.size() >= options_.max_sagas_in_memory) {
    return Status::unavailable("too many sagas in flight (" + std::to_string(sagas_.size()) +
                               "); try again when some have finished");
  }
  const uint64_t queued = store_.stats().queued_events;
  if (queued >= options_.max_queued_events) {
    return Status::unavailable("the saga log is " + std::to_string(queued) + " events behind; try again shortly");
  }
  return Status::ok();
}

}  // namespace usher
