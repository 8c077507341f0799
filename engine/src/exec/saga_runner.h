// The saga runner: every saga in memory, on the engine thread. It feeds each
// input to the state machine, appends the decision's events through the
// store's group commit, and runs the decision's commands (send a call, arm a
// timer, answer waiters) only once those events are durable: the write-ahead
// rule.
//
// Memory: a saga is held from its start (or recovery) until it is completed,
// compensated or stuck and that is durable; an operator's action on a stuck
// saga reads it back from the log. New starts are refused past
// max_sagas_in_memory or while the store's writer is too far behind
// (admit_load), and while appends fail (log_health.h).
//
// Its parts, one file each: the loop (saga_runner.cpp), starting
// (saga_starts.cpp), recovery (recovery.cpp), waiters (waiters.cpp) and
// operator actions (operator_actions.cpp).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "exec/background_reads.h"
#include "exec/cluster_member.h"
#include "exec/dispatcher.h"
#include "exec/feed_watch.h"
#include "exec/log_health.h"
#include "exec/saga.h"
#include "exec/saga_id.h"
#include "machine/machine.h"
#include "store/saga_store.h"
#include "usher/engine.h"
#include "view/log_inspector.h"

namespace usher {

using OperatorAction = std::variant<CancelInput, OperatorRetryInput, OperatorResolveInput, TerminateInput>;

class SagaRunner final : public DispatchSink {
 public:
  // `engine_reader` is the engine thread's own read connection (recovery,
  // reloads, operator actions); `reads` serves reads off the engine thread.
  SagaRunner(const EngineOptions& options, Clock& clock, boost::asio::io_context& io, SagaStore& store,
             LogInspectorImpl& engine_reader, BackgroundReads& reads);

  // Routes calls; thread-safe.
  Dispatcher& dispatcher() { return dispatcher_; }
  // Readers of the event feed waiting for new events (feed_watch.h).
  FeedWatch& feed() { return feed_; }
  const FeedWatch& feed() const { return feed_; }

  // ---- engine thread ----
  // Folds every unfinished saga from the log and runs what each needs (recovery.cpp).
  Status recover();
  // Starts a saga of an admitted definition (saga_starts.cpp). With an
  // idempotency key already used, answers with that saga. `looked_up`: the log
  // was already searched for the key (off this thread) and did not have it.
  void start(DefinitionPtr def, StartRequest request, std::function<void(Result<StartResponse>)> done,
             bool looked_up = false);
  // Calls `done` once the saga is settled and that is durable, or as it stands
  // after `timeout`; a saga not in memory as the log has it (waiters.cpp).
  void on_settled(const std::string& saga_id, Millis timeout, std::function<void(Json)> done);
  // Cancel, retry, resolve or terminate, answered once durable (operator_actions.cpp).
  void operate(const std::string& saga_id, OperatorAction action, std::function<void(Result<Json>)> reply);
  // The saga as the API shows it, if it is in memory.
  std::optional<Json> held_view(const std::string& saga_id) const;

  // ---- a node of a cluster (cluster.cpp) ----
  // Before recover(): the runner is a node of `member`'s cluster. Appends
  // carry the node's id and each saga's fence; a saga the log says another
  // node owns now is dropped; recovery is taking sagas over. `claims` is the
  // engine thread's own registry connection (an operator acting here on a
  // saga another node holds moves it here).
  void join_cluster(ClusterMember& member, std::unique_ptr<NodeRegistry> claims);
  void on_joined(int64_t node);
  void on_lapsed(int64_t node);
  void take_over(std::vector<TakenSaga> taken);
  int64_t node() const override { return node_.load(); }  // any thread

  // ---- stopping ----
  // Any thread: the engine is draining before it stops. From now on no saga
  // starts and no operator action is taken (both answered "shutting down":
  // nothing was written), and a waiter is answered at once with the saga as
  // it stands. Results of calls in flight are still decided and logged.
  void begin_drain() { draining_ = true; }
  // Engine thread: answers every waiter with the saga as it stands, and
  // every reader waiting on the feed with what it has.
  void answer_waiters();
  // Any thread: from now on nothing new is started, sent or decided.
  void begin_stop();
  // Engine thread: timers cancelled, waiters answered with the saga as it stands.
  void stop_sagas();
  // After the engine thread has stopped: timers belong to its io_context and
  // are destroyed while it still exists.
  void clear();

  bool stopping() const { return stopping_; }
  uint64_t sagas_in_memory() const { return in_memory_; }  // any thread

  // ---- DispatchSink ----
  Saga* still_wanted(const std::string& saga_id, uint64_t generation, const DispatchCommand& cmd) override;
  void on_sending(const std::string& saga_id, uint64_t generation, TimerCommand timeout) override;
  void on_result(const std::string& saga_id, uint64_t generation, ResultInput result) override;
  bool may_send() const override;

 private:
  // The loop (saga_runner.cpp).
  Saga* find(const std::string& saga_id, uint64_t generation);
  Saga& hold(const std::string& saga_id, std::unique_ptr<Saga> saga);
  void process(Saga& saga, const Input& in, std::function<void(Result<Json>)> reply = {});
  void commit(Saga& saga, Decision d, std::function<void(Status)> after);
  void on_durable(const std::string& saga_id, uint64_t generation, const Status& st, std::vector<Command> commands,
                  const std::vector<TransitionInfo>& transitions, std::function<void(Status)> after);
  void run_commands(Saga& saga, std::vector<Command> commands);
  void arm(Saga& saga, const TimerCommand& t);
  void settle(const std::string& saga_id);
  void forget(const std::string& saga_id, Saga& saga, const Status& why);
  void reload_later(const std::string& saga_id, uint64_t generation, std::optional<std::string> refused = std::nullopt);
  void note_log_failure(const std::string& saga_id, const Status& st);
  void note_log_ok();
  Result<Json> view_of(const std::string& saga_id);
  Input input(decltype(Input::what) what) { return Input{clock_.now_us(), jitter(), std::move(what)}; }
  double jitter() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }
  // Starting (saga_starts.cpp).
  Status admit_load() const;
  // Operator actions (operator_actions.cpp).
  Status take_from_log(const std::string& saga_id, int64_t fence = 0);
  // Cluster (cluster.cpp).
  void drop(const std::string& saga_id, uint64_t generation, const Status& why);
  void watch_log(const std::string& saga_id, Saga::Waiter waiter);
  Result<bool> claim_here(const std::string& saga_id);

  const EngineOptions& options_;
  Clock& clock_;
  boost::asio::io_context& io_;
  SagaStore& store_;
  LogInspectorImpl& engine_reader_;
  BackgroundReads& reads_;
  Dispatcher dispatcher_;
  FeedWatch feed_{io_};

  // Engine thread only.
  std::mt19937_64 rng_;
  SagaIdGenerator ids_;
  std::unordered_map<std::string, std::unique_ptr<Saga>> sagas_;
  std::unordered_map<std::string, std::string> key_index_;  // idempotency key -> id, sagas in memory
  uint64_t generation_ = 0;
  uint64_t waiter_token_ = 0;
  bool recovered_ = false;
  LogHealth log_health_;
  ClusterMember* cluster_ = nullptr;
  std::unique_ptr<NodeRegistry> claims_;
  std::atomic<int64_t> node_{0};  // 0: not a node, or between a lapse and joining again

  std::atomic<bool> draining_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> in_memory_{0};
};

}  // namespace usher
