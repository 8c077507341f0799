// One node cut off from PostgreSQL under load (support/tcp_proxy.h between
// them), for longer than its lease: its connections are reset and new ones
// go unanswered. The others take its sagas over; the node must send nothing
// more under its old id, and once the network heals it joins again as a new
// node and every saga finishes.
#include <doctest/doctest.h>

#include "cluster/cluster_checks.h"
#include "support/tcp_proxy.h"

using namespace usher::cluster;
using usher::test::TcpProxy;

TEST_CASE("a node cut off from the database past its lease sends no call after its sagas were taken over, and "
          "joins again as a new node once the network heals") {
  TempDir dir;
  RecordingService service(50ms, 300ms);
  write_cluster_workflow(dir, service);
  const std::string database = cluster_database(dir);
  TcpProxy proxy(static_cast<uint16_t>(PgCluster::shared().port()));
  Cluster cluster(dir, database, 3,
                  {"postgresql://usher@127.0.0.1:" + std::to_string(proxy.port()) + "/" + database});
  Load load(cluster, 50ms);
  std::this_thread::sleep_for(3s);

  Node& cut_off = cluster.node(0);
  const int64_t id = cut_off.current_id();
  cluster.set_live(0, false);
  const double cut_at = wall_now_ms();
  proxy.cut(TcpProxy::Partition::kBlackhole);
  const size_t owned = cluster.owned_by(id).size();
  CHECK_MESSAGE(owned > 0, "node " << id << " owned no running saga when cut off: the load is too light");

  const bool taken = eventually([&] { return cluster.owned_by(id).empty(); }, 20s);
  const double taken_at = wall_now_ms();
  const int64_t position = feed_position(database);
  CHECK_MESSAGE(taken, "node " << id << " still owns " << cluster.owned_by(id).size()
                               << " running sagas 20 s after it was cut off\n" << cluster.cluster_lines());
  MESSAGE("node " << id << " cut off owning " << owned << " running sagas; owned by others after "
                  << static_cast<int>(taken_at - cut_at) << " ms");

  std::this_thread::sleep_for(std::chrono::milliseconds(
      std::max<int64_t>(0, static_cast<int64_t>(cut_at + 6000 - wall_now_ms()))));
  const double healed_at = wall_now_ms();
  proxy.heal();

  const bool rejoined = eventually([&] { return cut_off.current_id() > id; }, 30s);
  CHECK_MESSAGE(rejoined, "node " << id << " (pid " << cut_off.pid() << ") did not join again after the network healed\n"
                                  << cut_off.cluster_lines());
  MESSAGE("healed " << static_cast<int>(healed_at - cut_at) << " ms after the cut; joined again as node "
                    << cut_off.current_id() << " after " << static_cast<int>(wall_now_ms() - healed_at) << " ms");
  cluster.set_live(0, true);
  std::this_thread::sleep_for(3s);
  load.stop();
  wait_settled(cluster, 60s);

  const Log log = read_log(database);
  const auto calls = service.calls();
  const size_t calls_before = check_quiet_after_takeover(log, calls, id, taken_at, position);
  CHECK_MESSAGE(calls_before > 0, "no call carried X-Usher-Node: " << id << ", so none could be told from another's");
  const Totals t = check_cluster_log(log, load.acknowledged(), load.conflicts(), calls);
  CHECK_MESSAGE(t.unattributed_calls == 0, t.unattributed_calls << " calls carried no X-Usher-Node");
  // The node that came back took part again: it wrote events as its new self.
  const int64_t new_id = cut_off.current_id();
  size_t written_after = 0;
  for (const auto& [saga_id, saga] : log)
    for (const LoggedEvent& e : saga.events) written_after += e.node == new_id;
  MESSAGE("partition test: " << load.acknowledged().size() << " starts acknowledged (" << load.resent()
                             << " sent again after no answer); " << to_string(t)
                             << "; the node wrote " << written_after << " events as node " << new_id
                             << " after it came back; the proxy accepted " << proxy.accepted() << " connections");
}
