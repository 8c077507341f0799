// This engine as a node of a cluster: several engines on one PostgreSQL saga
// log (docs/cluster.md). A thread of its own, on its own connections, keeps
// the node's lease (renewed well before it ends, judged by the database's
// clock) and takes over the running sagas of nodes whose lease ended, in
// bounded batches, handing each batch to the engine thread to fold and
// resume.
//
// The lease is also judged here, on this process's steady clock, from the
// moment each renewal was sent: lease_holds() turns false no later than the
// database would say, so a node paused or cut off past its lease sends
// nothing more (the dispatcher asks before each call) even before it learns
// that it lapsed. When it learns it, the engine drops every saga (`lapsed`)
// and the node joins again under a new id (`joined`); the sagas come back to
// whichever node claims them first.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/node_registry.h"
#include "store/saga_store.h"

namespace usher {

// A saga taken over: its row (owner and fence as claimed) and its events.
struct TakenSaga {
  SagaRow row;
  std::vector<Event> events;
};

class ClusterMember {
 public:
  struct Timing {
    std::chrono::milliseconds lease{3000};
    std::chrono::milliseconds renew_every{500};
    std::chrono::milliseconds sweep_every{500};
    size_t claim_batch = 256;
  };
  // Called on the engine thread (posted to its io_context), in order.
  struct Hooks {
    std::function<void(int64_t node)> joined;  // the node's id, first and after a lapse
    std::function<void(int64_t node)> lapsed;  // `node`'s lease is gone: it owns nothing now
    std::function<void(std::vector<TakenSaga>)> taken;
  };

  ClusterMember(std::unique_ptr<NodeRegistry> registry, std::unique_ptr<SagaStoreReader> reader, Timing timing,
                boost::asio::io_context& engine, Hooks hooks);
  ~ClusterMember();

  // Joins (blocking: the node has its id when this returns), then keeps the
  // lease and sweeps on the member thread.
  Status start(const std::string& name);
  // Any thread.
  int64_t node() const { return node_.load(); }
  bool lease_holds() const;
  void advertise(const std::string& address);
  // Stops the member thread; with `hand_over`, ends the lease in the log so
  // the node's sagas go to the others at once. Idempotent.
  void stop(bool hand_over);

 private:
  using SteadyClock = std::chrono::steady_clock;

  void run();
  bool renew();  // false: the lease is lost
  void sweep();
  void lapse();
  bool join();   // retries until joined or stopping
  void post(std::function<void()> f);
  // Waits until `until` or stop(); false when stopping.
  bool sleep_until(SteadyClock::time_point until);

  std::unique_ptr<NodeRegistry> registry_;  // member thread (and start())
  std::unique_ptr<SagaStoreReader> reader_;  // member thread
  const Timing timing_;
  boost::asio::io_context& engine_;
  Hooks hooks_;
  std::string name_;

  std::atomic<int64_t> node_{0};
  std::atomic<SteadyClock::rep> lease_ends_{0};  // steady clock ticks; 0: no lease
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;     // under mu_
  std::string address_;       // under mu_; advertised on each join
  bool address_dirty_ = false;  // under mu_
  std::thread thread_;
  std::once_flag stopped_;
};

}  // namespace usher
