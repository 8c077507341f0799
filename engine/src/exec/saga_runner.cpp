// The loop: inputs in, events durable, commands out.

#include "exec/saga_runner.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>

#include "view/projections.h"
#include "view/saga_view.h"

namespace usher {

namespace asio = boost::asio;

SagaRunner::SagaRunner(const EngineOptions& options, Clock& clock, asio::io_context& io, SagaStore& store,
                       LogInspectorImpl& engine_reader, BackgroundReads& reads)
    : options_(options),
      clock_(clock),
      io_(io),
      store_(store),
      engine_reader_(engine_reader),
      reads_(reads),
      dispatcher_(io, clock, options.max_calls_in_flight_per_service, *this),
      rng_(options.seed ? options.seed : std::random_device{}()),
      ids_(rng_()) {}

Saga* SagaRunner::find(const std::string& id, uint64_t generation) {
  auto it = sagas_.find(id);
  return it == sagas_.end() || it->second->generation != generation ? nullptr : it->second.get();
}

Saga& SagaRunner::hold(const std::string& id, std::unique_ptr<Saga> saga) {
  saga->generation = ++generation_;
  if (!saga->state.idempotency_key.empty()) key_index_[saga->state.idempotency_key] = id;
  Saga& held = *saga;
  sagas_[id] = std::move(saga);
  in_memory_ = sagas_.size();
  return held;
}

std::optional<Json> SagaRunner::held_view(const std::string& id) const {
  auto it = sagas_.find(id);
  if (it == sagas_.end()) return std::nullopt;
  return saga_detail_json(*it->second->def, it->second->state);
}

Result<Json> SagaRunner::view_of(const std::string& id) {
  if (auto held = held_view(id)) return std::move(*held);
  return engine_reader_.saga(id, std::nullopt);
}

void SagaRunner::process(Saga& saga, const Input& in, std::function<void(Result<Json>)> reply) {
  if (saga.append_failed) {
    if (reply) reply(Status::unavailable("saga " + saga.state.id + " is being reloaded from the log; try again"));
    return;
  }
  Decision d = decide(*saga.def, saga.state, in);
  if (d.refused) {
    if (reply) reply(*d.refused);
    return;
  }
  if (!d.ignored.empty()) spdlog::debug("saga {}: {}", saga.state.id, d.ignored);
  if (d.events.empty()) {
    if (reply) reply(saga_detail_json(*saga.def, saga.state));
    return;
  }
  std::string id = saga.state.id;
  commit(saga, std::move(d), [this, id, reply = std::move(reply)](Status st) {
    if (!reply) return;
    if (!st.is_ok()) return reply(Status::unavailable("saga log: " + st.message()));
    reply(view_of(id));
  });
}

// Appends a decision's events; once durable, runs `after` and then the
// decision's commands on the engine thread.
void SagaRunner::commit(Saga& saga, Decision d, std::function<void(Status)> after) {
  SagaRow row = saga_row(*saga.def, saga.state);
  // The store refuses the group unless it continues exactly where the saga's
  // durable events end: no seq gap, whatever failed before.
  row.prior_seq = saga.state.last_seq - static_cast<int64_t>(d.events.size());
  row.owner = node_;
  row.fence = saga.fence;
  std::vector<TransitionInfo> reported;
  if (options_.on_transition) reported = transitions(*saga.def, saga.state, d.events);
  std::string id = saga.state.id;
  uint64_t generation = saga.generation;
  store_.append(std::move(d.events), {std::move(row)},
                [this, id, generation, commands = std::move(d.commands), reported = std::move(reported),
                 after = std::move(after)](Status st) mutable {
                  asio::post(io_, [this, id, generation, st, commands = std::move(commands),
                                   reported = std::move(reported), after = std::move(after)]() mutable {
                    on_durable(id, generation, st, std::move(commands), reported, std::move(after));
                  });
                });
}

void SagaRunner::on_durable(const std::string& id, uint64_t generation, const Status& st,
                            std::vector<Command> commands, const std::vector<TransitionInfo>& reported,
                            std::function<void(Status)> after) {
  if (st.code() == StatusCode::kNotOwner) {
    // Another node took the saga over (or this node's lease lapsed): the log
    // holds nothing of this append, and the saga is no longer this node's.
    if (after) after(st);
    return drop(id, generation, st);
  }
  if (const Saga* s = find(id, generation);
      st.code() == StatusCode::kAlreadyExists && s != nullptr && !s->durable) {
    // A start whose idempotency key another start (on another node) took
    // first: it answers with that saga (saga_starts.cpp). Not a log failure.
    if (after) after(st);
    return;
  }
  if (!st.is_ok()) {
    note_log_failure(id, st);
    if (after) after(st);
    // The in-memory state ran ahead of the log. Reload from what is durable;
    // until then nothing more is decided for this saga.
    Saga* saga = find(id, generation);
    if (!saga || !saga->durable) return;
    if (saga->append_failed) return;  // a later group failing after the first: one reload
    saga->append_failed = true;
    // A refusal of the events themselves would repeat after a reload and
    // resend the same call for ever: the saga is stopped as stuck instead.
    bool content_fault = st.code() != StatusCode::kUnavailable && st.code() != StatusCode::kAborted;
    reload_later(id, generation, content_fault ? std::optional<std::string>(st.message()) : std::nullopt);
    return;
  }
  note_log_ok();
  feed_.committed();
  if (options_.on_transition)
    for (const auto& t : reported) options_.on_transition(t);
  if (after) after(Status::ok());
  if (Saga* saga = find(id, generation)) run_commands(*saga, std::move(commands));
}

void SagaRunner::run_commands(Saga& saga, std::vector<Command> commands) {
  for (auto& c : commands) {
    if (auto* d = std::get_if<DispatchCommand>(&c)) {
      if (!stopping_) dispatcher_.dispatch(saga, std::move(*d));  // else: logged as scheduled, sent on the next start
    } else if (auto* t = std::get_if<TimerCommand>(&c)) {
      arm(saga, *t);
    } else if (std::holds_alternative<SettledCommand>(c)) {
      settle(saga.state.id);
      return;  // settle() may have released the saga
    }
  }
}

// ---- calls and timers -----------------------------------------------------------

Saga* SagaRunner::still_wanted(const std::string& id, uint64_t generation, const DispatchCommand& cmd) {
  Saga* saga = find(id, generation);
  if (!saga) return nullptr;
  const CallState& c = saga->state.call(cmd.step, cmd.kind);
  return c.in_flight && c.attempts == cmd.attempt ? saga : nullptr;
}

void SagaRunner::on_sending(const std::string& id, uint64_t generation, TimerCommand timeout) {
  if (stopping_) return;
  Saga* saga = find(id, generation);
  if (!saga) return;
  const CallState& c = saga->state.call(timeout.step, timeout.call);
  if (!c.in_flight || c.attempts != timeout.attempt) return;  // already answered
  arm(*saga, timeout);
}

void SagaRunner::on_result(const std::string& id, uint64_t generation, ResultInput r) {
  if (stopping_) return;
  Saga* saga = find(id, generation);
  if (!saga) return;
  // Only the answer of the attempt in flight stops its timer: a late answer
  // of an earlier attempt must not cancel the timer of the one that replaced it.
  if (r.step < saga->state.steps.size()) {
    const CallState& c = saga->state.call(r.step, r.kind);
    if (c.in_flight && c.attempts == r.attempt && saga->attempt_timer) saga->attempt_timer->cancel();
  }
  process(*saga, input(std::move(r)));
}

bool SagaRunner::may_send() const { return cluster_ == nullptr || cluster_->lease_holds(); }

void SagaRunner::arm(Saga& saga, const TimerCommand& t) {
  std::unique_ptr<asio::steady_timer>& timer = t.kind == TimerKind::kAttemptTimeout ? saga.attempt_timer
                                               : t.kind == TimerKind::kRetry        ? saga.retry_timer
                                                                                    : saga.deadline_timer;
  if (!timer) timer = std::make_unique<asio::steady_timer>(io_);
  // The delay is measured on the engine's Clock, the same one the events are
  // stamped with.
  int64_t delay_us = std::max<int64_t>(0, t.at - clock_.now_us());
  timer->expires_after(std::chrono::microseconds(delay_us));
  timer->async_wait([this, id = saga.state.id, generation = saga.generation, t](const boost::system::error_code& ec) {
    if (ec || stopping_) return;  // cancelled, re-armed, or the engine is stopping
    if (Saga* s = find(id, generation)) process(*s, input(TimerInput{t.kind, t.step, t.call, t.attempt}));
  });
}

// ---- settling -----------------------------------------------------------------------

// The saga is completed, compensated or stuck, and that is durable.
void SagaRunner::settle(const std::string& id) {
  auto it = sagas_.find(id);
  if (it == sagas_.end()) return;
  Saga& saga = *it->second;
  auto waiters = std::move(saga.waiters);
  saga.waiters.clear();
  // Built only for someone who reads it: most sagas settle with no waiter.
  Json view = waiters.empty() ? Json() : saga_to_json(*saga.def, saga.state);
  // Settled sagas leave memory; a stuck one is read back from the log when
  // an operator acts on it (take_from_log). Unless an operator already
  // acted on it while this settlement was being written.
  if (settled(saga.state.status)) forget(id, saga, Status::ok());
  for (auto& w : waiters) w.done(view);
}

void SagaRunner::forget(const std::string& id, Saga& saga, const Status& why) {
  for (auto& w : saga.on_durable) w(why.is_ok() ? Status::failed_precondition("saga ended") : why);
  if (!saga.state.idempotency_key.empty()) {
    auto k = key_index_.find(saga.state.idempotency_key);
    if (k != key_index_.end() && k->second == id) key_index_.erase(k);
  }
  sagas_.erase(id);
  in_memory_ = sagas_.size();
}

// ---- when an append fails -------------------------------------------------------------

// Drops what the saga decided beyond the log and folds it again from the log
// once the log can be read, then reissues its pending commands. With
// `refused`, the log refused the saga's own events: once reloaded it is made
// stuck with that reason instead of resuming.
void SagaRunner::reload_later(const std::string& id, uint64_t generation, std::optional<std::string> refused) {
  auto timer = std::make_shared<asio::steady_timer>(io_, refused ? std::chrono::seconds(0) : std::chrono::seconds(1));
  timer->async_wait([this, id, generation, timer, refused](const boost::system::error_code& ec) {
    // Only the saga whose append failed: not one that left memory meanwhile
    // and came back (taken over again in a cluster), which starts afresh.
    if (ec || stopping_ || !find(id, generation)) return;
    auto loaded = engine_reader_.load(id, std::nullopt);
    if (!loaded.is_ok()) {
      spdlog::warn("saga {}: reload after a failed append: {}; trying again", id, loaded.status().message());
      return reload_later(id, generation, refused);
    }
    Saga* found = find(id, generation);
    if (!found) return;
    if (cluster_) {
      // Meanwhile another node may have taken it (an operator's action there).
      auto row = engine_reader_.reader().saga(id);
      if (row.is_ok() && row.value() && (row.value()->owner != node_ || row.value()->fence != found->fence)) {
        return drop(id, generation, Status::not_owner("saga " + id + " is another node's now"));
      }
    }
    Saga& saga = *found;
    saga.def = loaded->first;
    // The log never held the secrets: keep them across the reload.
    auto secrets = std::move(saga.state.unredacted_input);
    saga.state = std::move(loaded->second);
    if (saga.state.started()) saga.state.unredacted_input = std::move(secrets);
    saga.generation = ++generation_;
    saga.append_failed = false;
    saga.cancel_timers();
    if (settled(saga.state.status)) return settle(id);
    std::vector<Command> commands = usher::resume(*saga.def, saga.state, clock_.now_us());
    if (refused) {
      spdlog::error("saga {}: the saga log refused its events ({}); stopping it as stuck for an operator", id,
                    *refused);
      return process(saga, input(LogRefusedInput{*refused}));
    }
    run_commands(saga, std::move(commands));
  });
}

// While appends fail, new sagas are refused; the acknowledged ones reload
// from the log and retry their appends (reload_later).
void SagaRunner::note_log_failure(const std::string& id, const Status& st) {
  const bool changed = log_health_.note_failure(st, std::chrono::steady_clock::now());
  if (st.code() != StatusCode::kUnavailable) {
    // This append's own content was refused (a duplicate key, data that is
    // not valid JSON text): about this saga, not the log, which stays usable.
    spdlog::error("saga {}: saga log append failed: {}", id, st.to_string());
    return;
  }
  if (changed) {
    // One line per episode: with a full disk every saga's append fails, and
    // the reason is the same for all of them.
    spdlog::error("saga log unavailable: {}; refusing new sagas until an append succeeds (sagas in flight are kept "
                  "and retried)",
                  st.to_string());
  }
  spdlog::debug("saga {}: saga log append failed: {}", id, st.to_string());
}

void SagaRunner::note_log_ok() {
  if (log_health_.note_success()) spdlog::info("saga log writable again; accepting new sagas");
}

// ---- stopping -------------------------------------------------------------------------

void SagaRunner::begin_stop() { stopping_ = true; }

void SagaRunner::stop_sagas() {
  for (auto& [id, saga] : sagas_) {
    saga->cancel_timers();
    auto waiters = std::move(saga->waiters);
    saga->waiters.clear();
    for (auto& w : waiters) w.done(saga_to_json(*saga->def, saga->state));
  }
  feed_.release();
}

void SagaRunner::clear() {
  sagas_.clear();
  key_index_.clear();
  in_memory_ = 0;
}

}  // namespace usher
