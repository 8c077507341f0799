// Three nodes on one database under load; one is SIGKILLed every few
// seconds and restarted, round after round, then one is stopped with
// SIGTERM. The others take its sagas over and send their calls in flight
// again; afterwards the whole log is checked (cluster_checks.h), and what a
// reader of the event feed got all along (feed_follower.h).
//
// USHER_CLUSTER_ROUNDS sets the number of kills (3 by default, the CI form,
// about a minute; 10 or more for the long form).
#include <doctest/doctest.h>

#include <cstdlib>

#include "cluster/cluster_checks.h"
#include "cluster/feed_follower.h"

using namespace usher::cluster;

namespace {

int rounds_wanted() {
  const char* text = std::getenv("USHER_CLUSTER_ROUNDS");
  const int n = text == nullptr ? 0 : std::atoi(text);
  return n > 0 ? n : 3;
}

// One node gone: how long until its sagas had other owners, and until each
// had its call sent again by them.
struct Handover {
  int64_t node = 0;
  size_t sagas = 0;          // running sagas it owned when it went
  double owners_ms = 0;      // until none was owned by it any more
  double redispatch_ms = 0;  // until the last of them had a call from another node
  size_t not_redispatched = 0;
};

// Waits for `owned`, the running sagas of node `id` when it went at
// `gone_at`, to change hands and to be sent on; the times are from `gone_at`.
Handover follow_handover(Cluster& cluster, const RecordingService& service, int64_t id, std::set<std::string> owned,
                         double gone_at) {
  Handover h;
  h.node = id;
  owned.merge(cluster.owned_by(id));
  h.sagas = owned.size();
  const bool taken = eventually([&] { return cluster.owned_by(id).empty(); }, 20s);
  h.owners_ms = wall_now_ms() - gone_at;
  CHECK_MESSAGE(taken, "node " << id << " still owns " << cluster.owned_by(id).size() << " running sagas 20 s after it went\n"
                               << cluster.cluster_lines());
  // The first call for each saga after the node went.
  std::map<std::string, double> first;
  eventually(
      [&] {
        first.clear();
        for (const auto& c : service.calls())
          if (owned.contains(c.saga) && wall_ms(c.at) > gone_at && !first.contains(c.saga)) first[c.saga] = wall_ms(c.at);
        return first.size() == owned.size();
      },
      10s);
  for (const auto& [saga, at] : first) h.redispatch_ms = std::max(h.redispatch_ms, at - gone_at);
  // A saga with no call since is fine only if the node finished it itself:
  // settled under its ownership, so nothing was left to send. (Its last
  // commit may still be stamped just after `gone_at`: a COMMIT the node sent
  // before SIGKILL took effect is applied after it.)
  for (const std::string& saga : owned) {
    if (first.contains(saga)) continue;
    const std::string finished_before = PgCluster::shared().query(
        cluster.database(), "SELECT (status IN ('completed', 'compensated') AND owner = " + std::to_string(id) +
                            ")::text FROM sagas WHERE id = '" + saga + "'");
    if (finished_before != "true") {
      ++h.not_redispatched;
      MESSAGE("saga " << saga << " of node " << id << ": no call since it went; "
                      << describe(read_log(cluster.database()).at(saga)));
    }
  }
  return h;
}

}  // namespace

TEST_CASE("nodes SIGKILLed and restarted under load: every acknowledged saga finishes, one writer per fence, no "
          "action sent again once its success was committed, the feed gives every event once") {
  TempDir dir;
  RecordingService service(100ms, 500ms);
  write_cluster_workflow(dir, service);
  Cluster cluster(dir, cluster_database(dir), 3);
  const int rounds = rounds_wanted();
  FeedFollower feed(cluster);  // reads the event feed all along, from node to node

  std::vector<Handover> kills;
  {
    Load load(cluster, 25ms);  // 40 starts/s; with five calls of 100–500 ms each, about 60 in flight
    for (int round = 0; round < rounds; ++round) {
      std::this_thread::sleep_for(3s);
      const size_t slot = static_cast<size_t>(round) % cluster.size();
      Node& victim = cluster.node(slot);
      const int64_t id = victim.current_id();
      cluster.set_live(slot, false);
      std::set<std::string> owned = cluster.owned_by(id);
      const double killed_at = wall_now_ms();
      victim.kill();
      Handover h = follow_handover(cluster, service, id, std::move(owned), killed_at);
      MESSAGE("round " << round + 1 << ": SIGKILL of node " << id << " owning " << h.sagas << " running sagas; "
                       << "owned by others after " << static_cast<int>(h.owners_ms) << " ms, all sent on after "
                       << static_cast<int>(h.redispatch_ms) << " ms");
      CHECK_MESSAGE(h.sagas > 0, "node " << id << " owned no running saga when killed: the load is too light");
      CHECK_MESSAGE(h.not_redispatched == 0, h.not_redispatched << " sagas of node " << id
                                                                << " got no call from another node within 10 s\n"
                                                                << cluster.cluster_lines());
      CHECK_MESSAGE(h.redispatch_ms <= 5000, "the sagas of killed node " << id << " were sent on only after "
                                                                         << h.redispatch_ms << " ms (target 5 s)");
      kills.push_back(h);
      cluster.restart(slot);
    }

    // SIGTERM: the node ends its lease itself, so its sagas move at once.
    std::this_thread::sleep_for(3s);
    const size_t slot = static_cast<size_t>(rounds) % cluster.size();
    const int64_t id = cluster.node(slot).current_id();
    cluster.set_live(slot, false);
    std::set<std::string> owned = cluster.owned_by(id);
    const double stopped_at = wall_now_ms();
    cluster.node(slot).terminate();
    Handover h = follow_handover(cluster, service, id, std::move(owned), stopped_at);
    MESSAGE("SIGTERM of node " << id << " owning " << h.sagas << " running sagas: owned by others after "
                               << static_cast<int>(h.owners_ms) << " ms, sent on after "
                               << static_cast<int>(h.redispatch_ms) << " ms");
    CHECK_MESSAGE(h.owners_ms <= 2000, "a node stopped with SIGTERM handed its sagas over only after " << h.owners_ms
                                                                                                       << " ms");
    cluster.restart(slot);

    std::this_thread::sleep_for(2s);
    load.stop();
    wait_settled(cluster, 60s);

    const Log log = read_log(cluster.database());
    const Totals t = check_cluster_log(log, load.acknowledged(), load.conflicts(), service.calls());
    feed.stop();
    Findings fed;
    feed.check(log, fed);
    fed.check(FeedFollower::kinds());
    double worst = 0, sum = 0;
    for (const Handover& k : kills) {
      worst = std::max(worst, k.redispatch_ms);
      sum += k.redispatch_ms;
    }
    MESSAGE("kill test: " << rounds << " rounds of SIGKILL and one SIGTERM; " << load.acknowledged().size()
                          << " starts acknowledged (" << load.sent_twice() << " sent to two nodes at once, "
                          << load.resent() << " sent again after no answer, " << load.given_up() << " given up); "
                          << to_string(t) << "; sagas of a killed node sent on after "
                          << static_cast<int>(sum / std::max<size_t>(1, kills.size())) << " ms on average, "
                          << static_cast<int>(worst) << " ms at worst; " << feed.events()
                          << " events read from the feed");
    CHECK(load.given_up() == 0);
  }
}
