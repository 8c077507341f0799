#include "exec/cluster_member.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

namespace usher {

namespace {
// Nodes that ended this long ago and own no running saga leave `usher nodes`.
constexpr std::chrono::seconds kForgetNodesAfter{3600};
constexpr std::chrono::seconds kForgetEvery{60};
// How long a failing registry call waits before the next try.
constexpr std::chrono::milliseconds kRetryAfter{200};
}  // namespace

ClusterMember::ClusterMember(std::unique_ptr<NodeRegistry> registry, std::unique_ptr<SagaStoreReader> reader,
                             Timing timing, boost::asio::io_context& engine, Hooks hooks)
    : registry_(std::move(registry)),
      reader_(std::move(reader)),
      timing_(timing),
      engine_(engine),
      hooks_(std::move(hooks)) {}

ClusterMember::~ClusterMember() { stop(false); }

Status ClusterMember::start(const std::string& name) {
  name_ = name;
  const auto sent = SteadyClock::now();
  auto joined = registry_->join(name_, timing_.lease);
  if (!joined.is_ok()) return joined.status();
  node_ = joined.value();
  lease_ends_ = (sent + timing_.lease - timing_.lease / 10).time_since_epoch().count();
  spdlog::info("cluster: joined as node {} ({}), lease {} ms", node_.load(), name_, timing_.lease.count());
  post([this, node = node_.load()] { hooks_.joined(node); });
  thread_ = std::thread([this] { run(); });
  return Status::ok();
}

// The lease as this process can vouch for it: from when the last renewal
// that succeeded was sent, less a tenth for clocks that run at other rates.
bool ClusterMember::lease_holds() const {
  const auto ends = lease_ends_.load();
  return ends != 0 && SteadyClock::now().time_since_epoch().count() < ends;
}

void ClusterMember::advertise(const std::string& address) {
  std::lock_guard lock(mu_);
  address_ = address;
  address_dirty_ = true;
  wake_.notify_all();
}

void ClusterMember::stop(bool hand_over) {
  std::call_once(stopped_, [&] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      wake_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    const int64_t node = node_.load();
    lease_ends_ = 0;
    if (hand_over && node != 0) {
      if (Status s = registry_->leave(node); !s.is_ok()) {
        spdlog::warn("cluster: node {} could not hand its sagas over ({}); they wait for its lease to end", node,
                     s.message());
      } else {
        spdlog::info("cluster: node {} left; its sagas go to the other nodes", node);
      }
    }
  });
}

void ClusterMember::post(std::function<void()> f) { boost::asio::post(engine_, std::move(f)); }

bool ClusterMember::sleep_until(SteadyClock::time_point until) {
  std::unique_lock lock(mu_);
  wake_.wait_until(lock, until, [&] { return stopping_ || address_dirty_; });
  return !stopping_;
}

void ClusterMember::run() {
  auto next_renew = SteadyClock::now() + timing_.renew_every;
  auto next_sweep = SteadyClock::now();  // at once: sagas may be waiting since before this node joined
  auto next_forget = SteadyClock::now() + kForgetEvery;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
      if (address_dirty_) {
        address_dirty_ = false;
        const std::string address = address_;
        lock.unlock();
        if (Status s = registry_->advertise(node_.load(), address); !s.is_ok()) {
          spdlog::warn("cluster: could not record this node's address: {}", s.message());
        }
      }
    }
    const auto now = SteadyClock::now();
    if (now >= next_renew) {
      next_renew = now + timing_.renew_every;
      if (!renew()) {
        lapse();
        if (!join()) return;
        next_sweep = SteadyClock::now();
        continue;
      }
    }
    if (now >= next_sweep) {
      next_sweep = now + timing_.sweep_every;
      sweep();
    }
    if (now >= next_forget) {
      next_forget = now + kForgetEvery;
      (void)registry_->forget_nodes_older_than(kForgetNodesAfter);
    }
    if (!sleep_until(std::min(next_renew, next_sweep))) return;
  }
}

// One renewal. A failure to reach the database is not yet a lapse: the lease
// may still hold, and the next renewal may get through. It is one once the
// lease as this process vouches for it has run out.
bool ClusterMember::renew() {
  const auto sent = SteadyClock::now();
  auto renewed = registry_->renew(node_.load(), timing_.lease);
  if (renewed.is_ok() && renewed.value()) {
    lease_ends_ = (sent + timing_.lease - timing_.lease / 10).time_since_epoch().count();
    return true;
  }
  if (renewed.is_ok()) {
    spdlog::error("cluster: node {}'s lease lapsed (the database says so); dropping its sagas", node_.load());
    return false;
  }
  if (lease_holds()) {
    spdlog::warn("cluster: node {} could not renew its lease: {}", node_.load(), renewed.status().message());
    return true;
  }
  spdlog::error("cluster: node {}'s lease ran out while it could not renew it ({}); dropping its sagas",
                node_.load(), renewed.status().message());
  return false;
}

void ClusterMember::lapse() {
  lease_ends_ = 0;
  const int64_t old = node_.exchange(0);
  post([this, old] { hooks_.lapsed(old); });
}

bool ClusterMember::join() {
  for (;;) {
    const auto sent = SteadyClock::now();
    auto joined = registry_->join(name_, timing_.lease);
    if (joined.is_ok()) {
      node_ = joined.value();
      lease_ends_ = (sent + timing_.lease - timing_.lease / 10).time_since_epoch().count();
      spdlog::info("cluster: joined again as node {}", node_.load());
      post([this, node = node_.load()] { hooks_.joined(node); });
      std::lock_guard lock(mu_);
      address_dirty_ = !address_.empty();
      return true;
    }
    spdlog::warn("cluster: could not join: {}", joined.status().message());
    if (!sleep_until(SteadyClock::now() + kRetryAfter)) return false;
  }
}

// Claims orphaned sagas batch by batch until none are left or the lease is in
// doubt, reading each batch whole before handing it to the engine thread.
void ClusterMember::sweep() {
  for (;;) {
    if (!lease_holds()) return;
    const int64_t node = node_.load();
    auto claimed = registry_->claim_orphans(node, timing_.claim_batch);
    if (!claimed.is_ok()) {
      spdlog::warn("cluster: could not look for sagas to take over: {}", claimed.status().message());
      return;
    }
    if (claimed->empty()) return;
    std::vector<std::string> ids;
    for (const ClaimedSaga& c : claimed.value()) ids.push_back(c.id);
    std::vector<TakenSaga> taken;
    Status read = reader_->for_each_saga(ids, [&](const SagaRow& row, std::vector<Event>&& events) {
      // Owned by another node already: this node's lease ended meanwhile.
      if (row.owner == node) taken.push_back({row, std::move(events)});
    });
    if (!read.is_ok()) {
      // Claimed but not read: they stay this node's, unresumed, until its
      // lease ends. Rare (the database went away between two statements);
      // giving up the lease is what hands them on.
      spdlog::error("cluster: took over {} sagas but could not read them ({}); leaving the cluster to hand them on",
                    ids.size(), read.message());
      (void)registry_->leave(node);
      return;
    }
    spdlog::info("cluster: node {} took over {} sagas", node, taken.size());
    post([this, taken = std::move(taken)]() mutable { hooks_.taken(std::move(taken)); });
    if (claimed->size() < timing_.claim_batch) return;
  }
}

}  // namespace usher
