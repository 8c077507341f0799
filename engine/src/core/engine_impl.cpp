// The executor: runs the state machine for every saga on one engine thread,
// writes its events through the saga log's group commit, and runs the commands
// a decision produced only after its events are durable (the write-ahead rule).
//
// Threads:
//   - the engine thread runs io_: every saga's state, its timers, decide(), the
//     in-memory indexes, and the commands once their events are durable;
//   - the log's writer thread commits appends in groups and posts each group's
//     completion back to io_;
//   - adapters run their own I/O threads and post results back to io_.
// So saga state is only ever touched by the engine thread and needs no lock.
// Calls from other threads (start, get, cancel, ...) are posted to io_.
//
// Memory: a saga is held in memory from its start (or recovery) until it is
// completed, compensated or stuck and that is durable; an operator's action
// on a stuck saga reads it back from the log. Everything else is read from
// the log. New starts are refused past max_sagas_in_memory (admit_load).
//
// Pacing: calls to one service go out at most max_calls_in_flight_per_service
// at a time (the dispatcher below); an attempt's timeout runs from when it is
// sent, not from when it was decided or queued.

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <list>
#include <random>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "core/engine_factory.h"
#include "core/log_health.h"
#include "core/log_inspector.h"
#include "core/saga_id.h"
#include "core/saga_view.h"
#include "machine/machine.h"
#include "machine/render.h"
#include "local/local_adapter.h"
#include "model/json_schema.h"
#include "store/saga_log.h"
#include "usher/engine.h"

namespace usher {

namespace asio = boost::asio;

namespace {

class SystemClock final : public Clock {
 public:
  int64_t now_us() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock& system_clock() {
  static SystemClock clock;
  return clock;
}

namespace {

struct LoadedDefinition {
  DefinitionPtr def;
  std::shared_ptr<const JsonSchema> schema;  // null when the workflow has no `input:`
};

// A saga held by the engine thread.
struct Saga {
  DefinitionPtr def;
  SagaState state;
  uint64_t generation = 0;  // changes when the saga is reloaded; stale callbacks compare it
  bool durable = false;     // SagaStarted is committed
  // An append of this saga failed: the state ran ahead of the log. Inputs are
  // dropped until the saga is reloaded from what is durable, so nothing is
  // decided (or sent) on top of events the log does not hold.
  bool append_failed = false;
  std::vector<std::function<void(Status)>> on_durable;  // duplicate starts waiting for the first
  std::unique_ptr<asio::steady_timer> attempt_timer;
  std::unique_ptr<asio::steady_timer> retry_timer;
  std::unique_ptr<asio::steady_timer> deadline_timer;
  struct Waiter {
    uint64_t token;
    std::function<void(Json)> done;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::list<Waiter> waiters;
};

bool settled(SagaStatus s) { return is_terminal(s) || s == SagaStatus::kStuck; }

class EngineImpl final : public Engine {
 public:
  EngineImpl(EngineOptions options, std::unique_ptr<SagaLog> log, std::unique_ptr<LogInspectorImpl> engine_reader,
             std::unique_ptr<LogInspectorImpl> query_reader)
      : options_(std::move(options)),
        clock_(options_.clock ? *options_.clock : system_clock()),
        log_(std::move(log)),
        engine_reader_(std::move(engine_reader)),
        query_reader_(std::move(query_reader)),
        rng_(options_.seed ? options_.seed : std::random_device{}()),
        ids_(rng_()),
        work_(asio::make_work_guard(io_)),
        local_(std::make_shared<LocalAdapter>()) {
    thread_ = std::thread([this] { io_.run(); });
  }

  ~EngineImpl() override { shutdown(); }

  // ---- definitions and adapters ----------------------------------------------

  Status load(DefinitionPtr def) override {
    if (!def) return Status::invalid_argument("no definition");
    std::shared_ptr<const JsonSchema> schema;
    if (def->input_schema) {
      auto compiled = JsonSchema::compile(*def->input_schema);
      if (!compiled.is_ok()) return Status::invalid_argument(def->name + ": input schema: " + compiled.status().message());
      schema = std::make_shared<const JsonSchema>(std::move(compiled.value()));
    }
    Status stored = log_->store_definition(def->hash, def->name, def->version, def->source);
    if (!stored.is_ok()) return stored;
    {
      std::unique_lock lock(defs_mu_);
      by_name_[def->name] = LoadedDefinition{def, schema};
    }
    run_on_engine([this, def] {
      engine_reader_->remember(def);
      return 0;
    });
    std::lock_guard lock(query_mu_);
    query_reader_->remember(def);
    return Status::ok();
  }

  std::vector<DefinitionPtr> definitions() const override {
    std::shared_lock lock(defs_mu_);
    std::vector<DefinitionPtr> out;
    for (const auto& [name, loaded] : by_name_) out.push_back(loaded.def);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
    return out;
  }

  DefinitionPtr definition(const std::string& workflow) const override {
    std::shared_lock lock(defs_mu_);
    auto it = by_name_.find(workflow);
    return it == by_name_.end() ? nullptr : it->second.def;
  }

  void bind_service(const std::string& service, StepAdapterPtr adapter) override {
    std::unique_lock lock(adapters_mu_);
    by_service_[service] = std::move(adapter);
  }

  void bind_transport(Transport transport, StepAdapterPtr adapter) override {
    std::unique_lock lock(adapters_mu_);
    by_transport_[static_cast<int>(transport)] = std::move(adapter);
  }

  void register_handler(const std::string& call, LocalHandler handler) override {
    local_->add(call, std::move(handler));
    auto dot = call.find('.');
    std::unique_lock lock(adapters_mu_);
    by_service_[call.substr(0, dot)] = local_;
  }

  // ---- recovery ----------------------------------------------------------------

  Status resume() override {
    return run_on_engine([this] { return recover(); });
  }

  Status recover() {
    if (resumed_) return Status::failed_precondition("resume() was already called");
    int64_t now = clock_.now_us();
    size_t recovered = 0, skipped = 0;
    std::vector<std::pair<std::string, std::vector<Command>>> to_run;
    Status st = engine_reader_->reader().for_each_unfinished([&](const SagaRow& row, std::vector<Event>&& events) {
      auto def = engine_reader_->definition(row.definition_hash);
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
      saga->generation = ++generation_;
      to_run.emplace_back(row.id, usher::resume(*saga->def, saga->state, now));
      if (!saga->state.idempotency_key.empty()) key_index_[saga->state.idempotency_key] = row.id;
      sagas_[row.id] = std::move(saga);
      in_flight_ = sagas_.size();
      ++recovered;
    });
    if (!st.is_ok()) return st;
    resumed_ = true;
    for (auto& [id, commands] : to_run) {
      auto it = sagas_.find(id);
      if (it != sagas_.end()) run_commands(*it->second, std::move(commands));
    }
    if (recovered || skipped) spdlog::info("recovery: {} unfinished sagas resumed, {} skipped", recovered, skipped);
    return Status::ok();
  }

  // ---- starting ------------------------------------------------------------------

  Result<StartResponse> start(StartRequest request) override {
    auto promise = std::make_shared<std::promise<Result<StartResponse>>>();
    auto future = promise->get_future();
    start_async(std::move(request), [promise](Result<StartResponse> r) { promise->set_value(std::move(r)); });
    return future.get();
  }

  void start_async(StartRequest request, std::function<void(Result<StartResponse>)> done) override {
    LoadedDefinition loaded;
    {
      std::shared_lock lock(defs_mu_);
      auto it = by_name_.find(request.workflow);
      if (it != by_name_.end()) loaded = it->second;
    }
    // Checked on the caller's thread: it needs no saga state, and keeps the
    // engine thread free for sagas.
    Status refusal;
    if (!loaded.def) {
      refusal = Status::not_found("workflow \"" + request.workflow + "\" is not loaded");
    } else if (loaded.schema) {
      auto violations = loaded.schema->validate(request.input);
      if (!violations.empty()) {
        std::string msg = "input does not match the schema of \"" + request.workflow + "\":";
        for (const auto& v : violations) msg += "\n" + v.to_string();
        refusal = Status::invalid_argument(msg);
      }
    }
    if (!refusal.is_ok()) {
      asio::post(io_, [done = std::move(done), refusal] { done(refusal); });
      return;
    }
    asio::post(io_, [this, def = loaded.def, request = std::move(request), done = std::move(done)]() mutable {
      do_start(std::move(def), std::move(request), std::move(done));
    });
  }

  // `looked_up`: the log was already searched for the idempotency key (off
  // this thread) and did not have it.
  void do_start(DefinitionPtr def, StartRequest req, std::function<void(Result<StartResponse>)> done,
                bool looked_up = false) {
    if (stopping_) return done(Status::unavailable("the engine is shutting down"));
    if (!resumed_) return done(Status::failed_precondition("call resume() before starting sagas"));
    if (!req.idempotency_key.empty()) {
      // Owns copies of what it needs: it may run after do_start has returned,
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
        using Found = Result<std::optional<std::pair<std::string, Json>>>;
        auto lookup = [key = req.idempotency_key](LogInspectorImpl& r) -> Found {
          auto id = r.reader().saga_id_by_idempotency_key(key);
          if (!id.is_ok()) return id.status();
          if (!id.value()) return std::optional<std::pair<std::string, Json>>();
          auto view = r.saga(**id, std::nullopt);
          if (!view.is_ok()) return view.status();
          return std::optional(std::make_pair(**id, std::move(view.value())));
        };
        read_then(std::move(lookup), [this, def = std::move(def), req = std::move(req), done = std::move(done),
                                      reply_existing](Found found) mutable {
          if (stopping_) return done(Status::unavailable("the engine is shutting down"));
          if (!found.is_ok()) return done(found.status());
          if (found.value()) return reply_existing(found.value()->first, found.value()->second, done);
          do_start(std::move(def), std::move(req), std::move(done), true);
        });
        return;
      }
    }

    if (Status refused = log_health_.admit(std::chrono::steady_clock::now()); !refused.is_ok()) return done(refused);
    if (Status refused = admit_load(); !refused.is_ok()) return done(refused);

    int64_t now = clock_.now_us();
    std::string id = ids_.next(now);
    auto owned = std::make_unique<Saga>();
    Saga& saga = *owned;
    saga.def = std::move(def);
    saga.generation = ++generation_;
    sagas_[id] = std::move(owned);
    in_flight_ = sagas_.size();
    if (!req.idempotency_key.empty()) key_index_[req.idempotency_key] = id;

    Input in{now, jitter(), StartInput{id, std::move(req.input), req.idempotency_key, req.correlation_id,
                                       req.traceparent}};
    Decision d = decide(*saga.def, saga.state, in);
    commit(saga, std::move(d), [this, id, done = std::move(done)](Status st) {
      auto it = sagas_.find(id);
      if (!st.is_ok()) {
        // Nothing of this saga is in the log; it never existed.
        if (it != sagas_.end()) forget(id, *it->second, st);
        return done(Status::unavailable("saga log: " + st.message()));
      }
      Saga& s = *it->second;
      s.durable = true;
      done(StartResponse{id, true, saga_to_json(*s.def, s.state)});
      auto waiting = std::move(s.on_durable);
      for (auto& w : waiting) w(Status::ok());
    });
  }

  // Back-pressure: a new saga is refused (503 + Retry-After at the API) while
  // too many are held in memory or the log's writer is too far behind. Sagas
  // already acknowledged are never dropped or slowed by this.
  Status admit_load() const {
    if (sagas_.size() >= options_.max_sagas_in_memory) {
      return Status::unavailable("too many sagas in flight (" + std::to_string(sagas_.size()) +
                                 "); try again when some have finished");
    }
    const uint64_t queued = log_->stats().queued_events;
    if (queued >= options_.max_queued_events) {
      return Status::unavailable("the saga log is " + std::to_string(queued) +
                                 " events behind; try again shortly");
    }
    return Status::ok();
  }

  // ---- the loop: inputs in, events durable, commands out ---------------------

  void process(Saga& saga, const Input& in, std::function<void(Result<Json>)> reply = {}) {
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
      if (reply) reply(saga_to_json(*saga.def, saga.state));
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
  void commit(Saga& saga, Decision d, std::function<void(Status)> after) {
    SagaRow row = row_of(saga);
    // The log refuses the group unless it continues exactly where the saga's
    // durable events end: no seq gap, whatever failed before.
    row.prior_seq = saga.state.last_seq - static_cast<int64_t>(d.events.size());
    std::vector<TransitionInfo> transitions;
    if (options_.on_transition) transitions = transitions_of(saga, d.events);
    std::string id = saga.state.id;
    uint64_t generation = saga.generation;
    log_->append(std::move(d.events), {std::move(row)},
                 [this, id, generation, commands = std::move(d.commands), transitions = std::move(transitions),
                  after = std::move(after)](Status st) mutable {
                   asio::post(io_, [this, id, generation, st, commands = std::move(commands),
                                    transitions = std::move(transitions), after = std::move(after)]() mutable {
                     on_durable(id, generation, st, std::move(commands), transitions, std::move(after));
                   });
                 });
  }

  void on_durable(const std::string& id, uint64_t generation, const Status& st, std::vector<Command> commands,
                  const std::vector<TransitionInfo>& transitions, std::function<void(Status)> after) {
    auto it = sagas_.find(id);
    bool current = it != sagas_.end() && it->second->generation == generation;
    if (!st.is_ok()) {
      note_log_failure(id, st);
      if (after) after(st);
      // The in-memory state ran ahead of the log. Reload from what is durable;
      // until then nothing more is decided for this saga.
      it = sagas_.find(id);
      if (it == sagas_.end() || it->second->generation != generation || !it->second->durable) return;
      Saga& saga = *it->second;
      if (saga.append_failed) return;  // a later group failing after the first: one reload
      saga.append_failed = true;
      // A refusal of the events themselves would repeat after a reload and
      // resend the same call for ever: the saga is stopped as stuck instead.
      bool content_fault = st.code() != StatusCode::kUnavailable && st.code() != StatusCode::kAborted;
      reload_later(id, content_fault ? std::optional<std::string>(st.message()) : std::nullopt);
      return;
    }
    note_log_ok();
    if (options_.on_transition)
      for (const auto& t : transitions) options_.on_transition(t);
    if (after) after(Status::ok());
    if (!current) return;
    run_commands(*it->second, std::move(commands));
  }

  void run_commands(Saga& saga, std::vector<Command> commands) {
    for (auto& c : commands) {
      if (auto* d = std::get_if<DispatchCommand>(&c)) {
        dispatch(saga, std::move(*d));
      } else if (auto* t = std::get_if<TimerCommand>(&c)) {
        arm(saga, *t);
      } else if (std::holds_alternative<SettledCommand>(c)) {
        settle(saga.state.id);
        return;  // settle() may have released the saga
      }
    }
  }

  // ---- the dispatcher: calls out to services, paced per service --------------
  // At most options_.max_calls_in_flight_per_service attempts of one service
  // are out at once; the rest wait here, in order, with no timer running, so
  // a burst (100,000 sagas resumed after a restart) reaches a service at the
  // rate it answers and no attempt times out while it waits its turn.

  struct WaitingCall {
    std::string saga_id;
    uint64_t generation = 0;
    DispatchCommand cmd;
  };
  struct ServiceLane {
    size_t in_flight = 0;
    std::deque<WaitingCall> waiting;
  };

  void dispatch(Saga& saga, DispatchCommand cmd) {
    if (stopping_) return;  // logged as scheduled: sent on the next start
    const Step& step = saga.def->steps[cmd.step];
    const CallSpec& spec = cmd.kind == CallKind::kAction ? step.action : *step.compensate;
    ServiceLane& lane = lanes_[spec.service];
    if (lane.in_flight >= options_.max_calls_in_flight_per_service) {
      lane.waiting.push_back(WaitingCall{saga.state.id, saga.generation, std::move(cmd)});
      return;
    }
    ++lane.in_flight;
    send(saga, std::move(cmd));
  }

  // A call of `service` came back (or will never be sent): its slot goes to
  // the first waiting call that is still wanted.
  void release_slot(const std::string& service) {
    auto lane_it = lanes_.find(service);
    if (lane_it == lanes_.end()) return;
    ServiceLane& lane = lane_it->second;
    if (lane.in_flight > 0) --lane.in_flight;
    while (!stopping_ && lane.in_flight < options_.max_calls_in_flight_per_service && !lane.waiting.empty()) {
      WaitingCall next = std::move(lane.waiting.front());
      lane.waiting.pop_front();
      auto it = sagas_.find(next.saga_id);
      if (it == sagas_.end() || it->second->generation != next.generation) continue;
      const CallState& c = it->second->state.call(next.cmd.step, next.cmd.kind);
      if (!c.in_flight || c.attempts != next.cmd.attempt) continue;  // overtaken (a cancel, a timeout)
      ++lane.in_flight;
      send(*it->second, std::move(next.cmd));
    }
  }

  void send(Saga& saga, DispatchCommand cmd) {
    const Step& step = saga.def->steps[cmd.step];
    const CallSpec& spec = cmd.kind == CallKind::kAction ? step.action : *step.compensate;
    StepCall call;
    call.saga_id = saga.state.id;
    call.workflow = saga.def->name;
    call.step = step.name;
    call.kind = cmd.kind;
    call.attempt = cmd.attempt;
    call.service = saga.def->services.at(spec.service);
    call.operation = spec.operation;
    call.body = std::move(cmd.body);
    if (spec.http) {
      call.http_method = spec.http->method;
      call.http_path = std::move(cmd.http_path);
    }
    call.idempotency_key = idempotency_key(saga.state.id, step.name, cmd.kind);
    call.correlation_id = saga.state.correlation_id;
    call.traceparent = saga.state.traceparent;
    call.timeout = spec.timeout;

    StepAdapterPtr adapter = adapter_for(call.service);
    // The attempt's timeout runs from when the request leaves: now, or when
    // an adapter that may hold it first (a connection pool) says it is sent.
    TimerCommand timeout{TimerKind::kAttemptTimeout, cmd.step, cmd.kind, cmd.attempt, 0};
    const int64_t timeout_us = spec.timeout.count() * 1000;
    if (adapter && adapter->reports_sending()) {
      call.on_sending = [this, id = saga.state.id, generation = saga.generation, timeout, timeout_us]() mutable {
        asio::post(io_, [this, id, generation, timeout, timeout_us]() mutable {
          if (stopping_) return;
          auto it = sagas_.find(id);
          if (it == sagas_.end() || it->second->generation != generation) return;
          const CallState& c = it->second->state.call(timeout.step, timeout.call);
          if (!c.in_flight || c.attempts != timeout.attempt) return;  // already answered
          timeout.at = clock_.now_us() + timeout_us;
          arm(*it->second, timeout);
        });
      };
    } else {
      timeout.at = clock_.now_us() + timeout_us;
      arm(saga, timeout);
    }
    auto reply = [this, id = saga.state.id, generation = saga.generation, step = cmd.step, kind = cmd.kind,
                  attempt = cmd.attempt, service = spec.service](StepResult r) {
      // Always through the queue: a local handler answers inline, and the
      // saga must not be re-entered from inside its own dispatch.
      asio::post(io_, [this, id, generation, step, kind, attempt, service, r = std::move(r)]() mutable {
        release_slot(service);
        on_result(id, generation, ResultInput{step, kind, attempt, std::move(r)});
      });
    };
    if (!adapter) {
      reply(StepResult::not_sent("no adapter bound for service \"" + call.service.name + "\" (" +
                                 transport_name(call.service.transport) + ")"));
      return;
    }
    adapter->dispatch(std::move(call), std::move(reply));
  }

  void on_result(const std::string& id, uint64_t generation, ResultInput r) {
    // While stopping, adapters answer their calls in flight with "shut down";
    // that is not the service's answer. The call stays in flight in the log
    // and is sent again on the next start.
    if (stopping_) return;
    auto it = sagas_.find(id);
    if (it == sagas_.end() || it->second->generation != generation) return;
    Saga& saga = *it->second;
    // Only the answer of the attempt in flight stops its timer: a late answer
    // of an earlier attempt must not cancel the timer of the one that replaced it.
    if (r.step < saga.state.steps.size()) {
      const CallState& c = saga.state.call(r.step, r.kind);
      if (c.in_flight && c.attempts == r.attempt && saga.attempt_timer) saga.attempt_timer->cancel();
    }
    process(saga, Input{clock_.now_us(), jitter(), std::move(r)});
  }

  void arm(Saga& saga, const TimerCommand& t) {
    std::unique_ptr<asio::steady_timer>& timer = t.kind == TimerKind::kAttemptTimeout ? saga.attempt_timer
                                                 : t.kind == TimerKind::kRetry        ? saga.retry_timer
                                                                                      : saga.deadline_timer;
    if (!timer) timer = std::make_unique<asio::steady_timer>(io_);
    int64_t delay_us = std::max<int64_t>(0, t.at - clock_.now_us());
    timer->expires_after(std::chrono::microseconds(delay_us));
    timer->async_wait([this, id = saga.state.id, generation = saga.generation, t](const boost::system::error_code& ec) {
      if (ec || stopping_) return;  // cancelled, re-armed, or the engine is stopping
      auto it = sagas_.find(id);
      if (it == sagas_.end() || it->second->generation != generation) return;
      process(*it->second, Input{clock_.now_us(), jitter(), TimerInput{t.kind, t.step, t.call, t.attempt}});
    });
  }

  StepAdapterPtr adapter_for(const Service& service) {
    std::shared_lock lock(adapters_mu_);
    if (auto it = by_service_.find(service.name); it != by_service_.end()) return it->second;
    if (service.transport == Transport::kLocal) return local_;
    if (auto it = by_transport_.find(static_cast<int>(service.transport)); it != by_transport_.end())
      return it->second;
    return nullptr;
  }

  // The saga is completed, compensated or stuck, and that is durable.
  void settle(const std::string& id) {
    auto it = sagas_.find(id);
    if (it == sagas_.end()) return;
    Saga& saga = *it->second;
    Json view = saga_to_json(*saga.def, saga.state);
    auto waiters = std::move(saga.waiters);
    saga.waiters.clear();
    // Settled sagas leave memory; a stuck one is read back from the log when
    // an operator acts on it (take_from_log). Unless an operator already
    // acted on it while this settlement was being written.
    if (settled(saga.state.status)) forget(id, saga, Status::ok());
    for (auto& w : waiters) w.done(view);
  }

  void forget(const std::string& id, Saga& saga, const Status& why) {
    for (auto& w : saga.on_durable) w(why.is_ok() ? Status::failed_precondition("saga ended") : why);
    if (!saga.state.idempotency_key.empty()) {
      auto k = key_index_.find(saga.state.idempotency_key);
      if (k != key_index_.end() && k->second == id) key_index_.erase(k);
    }
    sagas_.erase(id);
    in_flight_ = sagas_.size();
  }

  // Brings a saga that is not in memory (a stuck one) back from the log, to
  // act on it. Its secrets were held in memory only and are gone.
  Status take_from_log(const std::string& id) {
    auto loaded = engine_reader_->load(id, std::nullopt);
    if (!loaded.is_ok()) return loaded.status();
    auto saga = std::make_unique<Saga>();
    saga->def = loaded->first;
    saga->state = std::move(loaded->second);
    saga->durable = true;
    saga->generation = ++generation_;
    if (!saga->state.idempotency_key.empty()) key_index_[saga->state.idempotency_key] = id;
    sagas_[id] = std::move(saga);
    in_flight_ = sagas_.size();
    return Status::ok();
  }

  // After a failed append: drop the in-memory saga and fold it again from the
  // log once the log can be read, then reissue its pending commands.
  // With `refused`, the log refused the saga's own events: once reloaded it is
  // made stuck with that reason instead of resuming.
  void reload_later(const std::string& id, std::optional<std::string> refused = std::nullopt) {
    auto timer = std::make_shared<asio::steady_timer>(io_, refused ? std::chrono::seconds(0) : std::chrono::seconds(1));
    timer->async_wait([this, id, timer, refused](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      auto loaded = engine_reader_->load(id, std::nullopt);
      if (!loaded.is_ok()) {
        spdlog::warn("saga {}: reload after a failed append: {}; trying again", id, loaded.status().message());
        return reload_later(id, refused);
      }
      auto it = sagas_.find(id);
      if (it == sagas_.end()) return;
      Saga& saga = *it->second;
      saga.def = loaded->first;
      // The log never held the secrets: keep them across the reload.
      auto secrets = std::move(saga.state.unredacted_input);
      saga.state = std::move(loaded->second);
      if (saga.state.started()) saga.state.unredacted_input = std::move(secrets);
      saga.generation = ++generation_;
      saga.append_failed = false;
      for (auto* t : {&saga.attempt_timer, &saga.retry_timer, &saga.deadline_timer})
        if (*t) (*t)->cancel();
      if (settled(saga.state.status)) return settle(id);
      std::vector<Command> commands = usher::resume(*saga.def, saga.state, clock_.now_us());
      if (refused) {
        spdlog::error("saga {}: the saga log refused its events ({}); stopping it as stuck for an operator", id,
                      *refused);
        return process(saga, Input{clock_.now_us(), jitter(), LogRefusedInput{*refused}});
      }
      run_commands(saga, std::move(commands));
    });
  }

  // ---- the log's health (core/log_health.h) -------------------------------------
  // While appends fail, new sagas are refused; the acknowledged ones reload
  // from the log and retry their appends (reload_later).

  void note_log_failure(const std::string& id, const Status& st) {
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

  void note_log_ok() {
    if (log_health_.note_success()) spdlog::info("saga log writable again; accepting new sagas");
  }

  // ---- reading and operating ---------------------------------------------------

  // Runs `read` against the log on the reader thread, never on the engine
  // thread (a SQLite read can wait for the disk), then `then` with its result
  // on the engine thread.
  template <typename Read, typename Then>
  void read_then(Read read, Then then) {
    asio::post(read_pool_, [this, read = std::move(read), then = std::move(then)]() mutable {
      auto result = [&] {
        std::lock_guard lock(query_mu_);
        return read(*query_reader_);
      }();
      asio::post(io_, [result = std::move(result), then = std::move(then)]() mutable { then(std::move(result)); });
    });
  }

  Result<Json> view_of(const std::string& id) {
    if (auto it = sagas_.find(id); it != sagas_.end()) return saga_to_json(*it->second->def, it->second->state);
    return engine_reader_->saga(id, std::nullopt);
  }

  Result<Json> get(const std::string& saga_id) override {
    // In memory: from the engine thread. Otherwise read here, on the caller's
    // thread, so the engine thread never waits for the disk.
    auto held = run_on_engine([this, saga_id]() -> std::optional<Json> {
      auto it = sagas_.find(saga_id);
      if (it == sagas_.end()) return std::nullopt;
      return saga_to_json(*it->second->def, it->second->state);
    });
    if (held) return std::move(*held);
    std::lock_guard lock(query_mu_);
    return query_reader_->saga(saga_id, std::nullopt);
  }

  std::future<Json> wait(const std::string& saga_id) override {
    auto promise = std::make_shared<std::promise<Json>>();
    auto future = promise->get_future();
    on_settled(saga_id, Millis::max(), [promise](Json j) { promise->set_value(std::move(j)); });
    return future;
  }

  void on_settled(const std::string& saga_id, Millis timeout, std::function<void(Json)> done) override {
    asio::post(io_, [this, saga_id, timeout, done = std::move(done)]() mutable {
      auto it = sagas_.find(saga_id);
      // A saga in memory that looks settled may not be durably so yet: its
      // waiters are answered by settle(), once it is.
      if (it == sagas_.end()) {
        // Settled (or unknown): as the log has it, read off the engine thread.
        return read_then([saga_id](LogInspectorImpl& r) { return r.saga(saga_id, std::nullopt); },
                         [done = std::move(done)](Result<Json> view) {
                           done(view.is_ok() ? std::move(view.value()) : Json(nullptr));
                         });
      }
      Saga& saga = *it->second;
      uint64_t token = ++waiter_token_;
      Saga::Waiter w{token, std::move(done), nullptr};
      if (timeout != Millis::max()) {
        w.timer = std::make_unique<asio::steady_timer>(io_, timeout);
        w.timer->async_wait([this, saga_id, token](const boost::system::error_code& ec) {
          if (ec) return;
          auto it = sagas_.find(saga_id);
          if (it == sagas_.end()) return;
          auto& list = it->second->waiters;
          for (auto w = list.begin(); w != list.end(); ++w) {
            if (w->token != token) continue;
            auto cb = std::move(w->done);
            list.erase(w);
            cb(saga_to_json(*it->second->def, it->second->state));
            return;
          }
        });
      }
      saga.waiters.push_back(std::move(w));
    });
  }

  Result<Json> cancel(const std::string& saga_id) override { return operate(saga_id, CancelInput{}); }
  Result<Json> retry(const std::string& saga_id) override { return operate(saga_id, OperatorRetryInput{}); }

  template <typename Op>
  Result<Json> operate(const std::string& saga_id, Op op) {
    auto promise = std::make_shared<std::promise<Result<Json>>>();
    auto future = promise->get_future();
    asio::post(io_, [this, saga_id, op, promise] {
      auto reply = [promise](Result<Json> r) { promise->set_value(std::move(r)); };
      if (stopping_) return reply(Status::unavailable("the engine is shutting down"));
      auto it = sagas_.find(saga_id);
      if (it == sagas_.end()) {
        // Not in memory: finished, stuck, or does not exist.
        auto view = view_of(saga_id);
        if (!view.is_ok()) return reply(view.status());
        const std::string status = view->value("status", std::string("finished"));
        if (status != saga_status_name(SagaStatus::kStuck)) {
          return reply(Status::failed_precondition("saga is " + status + "; nothing to " +
                                                   (std::is_same_v<Op, CancelInput> ? "cancel" : "retry")));
        }
        if (Status taken = take_from_log(saga_id); !taken.is_ok()) return reply(taken);
        it = sagas_.find(saga_id);
      }
      process(*it->second, Input{clock_.now_us(), jitter(), op}, reply);
      // Refused (cancel of a stuck saga): it goes back to the log only.
      it = sagas_.find(saga_id);
      if (it != sagas_.end() && it->second->durable && !it->second->append_failed &&
          it->second->state.status == SagaStatus::kStuck && it->second->waiters.empty())
        forget(saga_id, *it->second, Status::ok());
    });
    return future.get();
  }

  Result<Json> list(const SagaFilter& filter) override {
    std::lock_guard lock(query_mu_);
    return query_reader_->list(filter);
  }

  Result<Json> events(const std::string& saga_id) override {
    std::lock_guard lock(query_mu_);
    return query_reader_->events(saga_id);
  }

  EngineStats stats() const override {
    SagaLogStats ls = log_->stats();
    EngineStats s;
    s.commits = ls.commits;
    s.events_committed = ls.events;
    s.commit_micros_total = ls.commit_micros_total;
    s.sagas_in_flight = in_flight_.load();
    return s;
  }

  void shutdown() override {
    if (shut_down_.exchange(true)) return;
    stopping_ = true;
    read_pool_.join();  // reads in progress finish; their answers see stopping_
    // Adapters first: after this no result can arrive.
    std::vector<StepAdapterPtr> adapters;
    {
      std::unique_lock lock(adapters_mu_);
      for (auto& [k, a] : by_service_) adapters.push_back(a);
      for (auto& [k, a] : by_transport_) adapters.push_back(a);
    }
    for (auto& a : adapters) a->shutdown();
    log_->flush();
    // Let the engine thread run what the flush posted, then stop it.
    run_on_engine([this] {
      for (auto& [id, saga] : sagas_) {
        for (auto* t : {&saga->attempt_timer, &saga->retry_timer, &saga->deadline_timer})
          if (*t) (*t)->cancel();
        auto waiters = std::move(saga->waiters);
        saga->waiters.clear();
        for (auto& w : waiters) w.done(saga_to_json(*saga->def, saga->state));
      }
      return 0;
    });
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    // Saga timers belong to io_: destroy them while it still exists.
    sagas_.clear();
    key_index_.clear();
    in_flight_ = 0;
    log_->close();
  }

 private:
  template <typename F>
  auto run_on_engine(F f) -> decltype(f()) {
    using R = decltype(f());
    if (std::this_thread::get_id() == thread_.get_id()) return f();
    std::promise<R> promise;
    auto future = promise.get_future();
    asio::post(io_, [&] { promise.set_value(f()); });
    return future.get();
  }

  double jitter() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

  SagaRow row_of(const Saga& saga) const {
    const SagaState& s = saga.state;
    SagaRow row;
    row.id = s.id;
    row.workflow = s.workflow;
    row.version = s.version;
    row.definition_hash = s.definition_hash;
    row.status = s.status;
    if (s.status == SagaStatus::kCompensating && s.compensation_cursor < s.compensation_plan.size())
      row.current_step = saga.def->steps[s.compensation_plan[s.compensation_cursor]].name;
    else if (!is_terminal(s.status) && s.current < saga.def->steps.size())
      row.current_step = saga.def->steps[s.current].name;
    row.idempotency_key = s.idempotency_key;
    row.correlation_id = s.correlation_id;
    row.created_at = s.created_at;
    row.updated_at = s.updated_at;
    row.deadline = s.deadline;
    row.last_error = s.status == SagaStatus::kCompleted ? std::string() : s.last_error;
    row.last_seq = s.last_seq;
    return row;
  }

  std::vector<TransitionInfo> transitions_of(const Saga& saga, const std::vector<Event>& events) const {
    std::vector<TransitionInfo> out;
    out.reserve(events.size());
    for (const Event& e : events) {
      TransitionInfo t;
      t.saga_id = e.saga_id;
      t.workflow = saga.def->name;
      t.event = e.type;
      t.step = e.step;
      t.status = saga.state.status;
      t.kind = e.data.value("kind", "") == "compensate" ? CallKind::kCompensate : CallKind::kAction;
      if (e.type == EventType::kStepFailed) t.detail = e.data.value("outcome", "") + ": " + e.data.value("error", "");
      if (e.type == EventType::kStepSucceeded || e.type == EventType::kStepFailed) {
        if (auto idx = saga.def->step_index(e.step)) {
          const CallState& c = saga.state.call(*idx, e.data.value("kind", "") == "compensate" ? CallKind::kCompensate
                                                                                             : CallKind::kAction);
          t.latency_us = e.occurred_at - c.scheduled_at;
          if (t.detail.empty()) t.detail = e.data.value("kind", "");
        }
      }
      out.push_back(std::move(t));
    }
    return out;
  }

  EngineOptions options_;
  Clock& clock_;
  std::unique_ptr<SagaLog> log_;
  std::unique_ptr<LogInspectorImpl> engine_reader_;  // engine thread only
  std::mutex query_mu_;
  std::unique_ptr<LogInspectorImpl> query_reader_;   // list/events from any thread, under query_mu_

  mutable std::shared_mutex defs_mu_;
  std::unordered_map<std::string, LoadedDefinition> by_name_;

  mutable std::shared_mutex adapters_mu_;
  std::unordered_map<std::string, StepAdapterPtr> by_service_;
  std::unordered_map<int, StepAdapterPtr> by_transport_;

  // Engine thread only.
  std::mt19937_64 rng_;
  SagaIdGenerator ids_;
  std::unordered_map<std::string, std::unique_ptr<Saga>> sagas_;
  std::unordered_map<std::string, std::string> key_index_;  // idempotency key -> id, sagas in memory
  std::unordered_map<std::string, ServiceLane> lanes_;      // by service name
  uint64_t generation_ = 0;
  uint64_t waiter_token_ = 0;
  bool resumed_ = false;
  LogHealth log_health_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<uint64_t> in_flight_{0};

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::thread_pool read_pool_{1};  // reads of the log for the engine thread (read_then)
  std::shared_ptr<LocalAdapter> local_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Engine>> open_engine_with_log(EngineOptions options, std::unique_ptr<SagaLog> log) {
  auto engine_reader = SagaLogReader::open(options.db_path, false);
  if (!engine_reader.is_ok()) return engine_reader.status();
  auto query_reader = SagaLogReader::open(options.db_path, false);
  if (!query_reader.is_ok()) return query_reader.status();
  return std::unique_ptr<Engine>(
      new EngineImpl(std::move(options), std::move(log),
                     std::make_unique<LogInspectorImpl>(std::move(engine_reader.value())),
                     std::make_unique<LogInspectorImpl>(std::move(query_reader.value()))));
}

Result<std::unique_ptr<Engine>> Engine::open(EngineOptions options) {
  if (options.db_path.empty() || options.db_path == ":memory:")
    return Status::invalid_argument("the saga log needs a file: \"" + options.db_path + "\" is not durable");
  auto log = SagaLog::open(options.db_path, options.durability, options.max_batch_events, options.sqlite_vfs);
  if (!log.is_ok()) return log.status();
  return open_engine_with_log(std::move(options), std::move(log.value()));
}

}  // namespace usher
