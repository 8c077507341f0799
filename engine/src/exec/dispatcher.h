// The dispatcher: routes each call to the adapter bound to its service (by
// name, else by transport; `local` services to the in-process handlers) and
// paces calls per service.
//
// Pacing: at most max_calls_in_flight_per_service attempts of one service are
// out at once; the rest wait here, in order, with no timer running, so a burst
// (100,000 sagas resumed after a restart) reaches a service at the rate it
// answers and no attempt times out while it waits its turn.
//
// Threads: bind_*() and register_handler() from any thread; dispatch() and
// every DispatchSink callback on the engine thread. Adapters answer from their
// own threads; the answer is posted to the engine thread, never run inline
// (a local handler answers inside dispatch(), and a saga must not be
// re-entered from inside its own dispatch).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "exec/local_adapter.h"
#include "exec/saga.h"
#include "machine/machine.h"
#include "usher/options.h"

namespace usher {

// What the dispatcher reports back to the saga runner, on the engine thread.
class DispatchSink {
 public:
  virtual ~DispatchSink() = default;
  // The saga a queued call belongs to, if it is still in memory (same
  // generation) and still waits for exactly that attempt; else null.
  virtual Saga* still_wanted(const std::string& saga_id, uint64_t generation, const DispatchCommand& cmd) = 0;
  // The attempt leaves now: its timeout (at = now + the call's timeout) starts.
  virtual void on_sending(const std::string& saga_id, uint64_t generation, TimerCommand timeout) = 0;
  // The attempt's result, as the adapter reported it.
  virtual void on_result(const std::string& saga_id, uint64_t generation, ResultInput result) = 0;
  // False while this node's lease is in doubt (cluster_member.h): an attempt
  // is then answered "not sent" instead of leaving.
  virtual bool may_send() const = 0;
  // The cluster node sending (StepCall::node); 0 when not in a cluster.
  virtual int64_t node() const = 0;
};

class Dispatcher {
 public:
  Dispatcher(boost::asio::io_context& io, Clock& clock, size_t max_in_flight_per_service, DispatchSink& sink);

  void bind_service(const std::string& service, StepAdapterPtr adapter);
  void bind_transport(Transport transport, StepAdapterPtr adapter);
  void register_handler(const std::string& call, LocalHandler handler);

  // Sends the attempt, or queues it behind the service's calls in flight.
  void dispatch(Saga& saga, DispatchCommand cmd);

  // The first half of a shutdown: no more sends. A call decided from now on
  // (or waiting for its turn) stays scheduled in the log and is sent on the
  // next start; answers of the calls already out still reach the sink.
  void hold();
  // Waits until every call handed to an adapter has been answered and its
  // answer handed to the sink, or `timeout` passed; true when none is out.
  // Any thread but the engine thread, which delivers the answers.
  bool wait_until_idle(Millis timeout);

  // No more sends; answers that still come are dropped. Then shuts every bound
  // adapter down, which answers its calls in flight (with "shut down").
  void stop();

 private:
  struct WaitingCall {
    std::string saga_id;
    uint64_t generation = 0;
    DispatchCommand cmd;
  };
  struct ServiceLane {
    size_t in_flight = 0;
    std::deque<WaitingCall> waiting;
  };

  void send(Saga& saga, DispatchCommand cmd);
  // A call of `service` came back: its slot goes to the first waiting call
  // that is still wanted.
  void release_slot(const std::string& service);
  StepAdapterPtr adapter_for(const Service& service) const;

  boost::asio::io_context& io_;
  Clock& clock_;
  const size_t max_in_flight_;
  DispatchSink& sink_;
  const std::shared_ptr<LocalAdapter> local_ = std::make_shared<LocalAdapter>();
  std::atomic<bool> stopping_{false};
  std::atomic<bool> holding_{false};

  // Calls sent and not yet answered to the sink, for wait_until_idle().
  std::mutex out_mu_;
  std::condition_variable out_cv_;
  size_t out_ = 0;

  mutable std::shared_mutex routes_mu_;
  std::unordered_map<std::string, StepAdapterPtr> by_service_;
  std::unordered_map<int, StepAdapterPtr> by_transport_;

  std::unordered_map<std::string, ServiceLane> lanes_;  // by service name; engine thread only
};

}  // namespace usher
