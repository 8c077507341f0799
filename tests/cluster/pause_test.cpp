// A node stopped with SIGSTOP under load for longer than its lease, as a
// long GC pause or a frozen VM would: the others take its sagas over; when it
// runs again it must find its lease gone and stay silent under its old id —
// no event written, no call sent — then join again as a new node.
#include <doctest/doctest.h>

#include "cluster/cluster_checks.h"

using namespace usher::cluster;

TEST_CASE("a node paused past its lease writes no event and sends no call after its sagas were taken over, "
          "then joins again as a new node") {
  TempDir dir;
  RecordingService service(50ms, 300ms);
  write_cluster_workflow(dir, service);
  Cluster cluster(dir, cluster_database(dir), 3);
  Load load(cluster, 50ms);
  std::this_thread::sleep_for(3s);

  Node& paused = cluster.node(0);
  const int64_t id = paused.current_id();
  cluster.set_live(0, false);
  const double paused_at = wall_now_ms();
  paused.pause();
  const size_t owned = cluster.owned_by(id).size();
  CHECK_MESSAGE(owned > 0, "node " << id << " owned no running saga when paused: the load is too light");

  const bool taken = eventually([&] { return cluster.owned_by(id).empty(); }, 20s);
  const double taken_at = wall_now_ms();
  const int64_t position = feed_position(cluster.database());
  CHECK_MESSAGE(taken, "node " << id << " still owns " << cluster.owned_by(id).size()
                               << " running sagas 20 s after it was paused\n" << cluster.cluster_lines());
  MESSAGE("node " << id << " paused owning " << owned << " running sagas; owned by others after "
                  << static_cast<int>(taken_at - paused_at) << " ms");

  // Paused for 6 s in all, twice its lease.
  std::this_thread::sleep_for(std::chrono::milliseconds(
      std::max<int64_t>(0, static_cast<int64_t>(paused_at + 6000 - wall_now_ms()))));
  const double resumed_at = wall_now_ms();
  paused.resume();

  // It learns its lease lapsed and joins again, under a new id.
  const bool rejoined = eventually([&] { return paused.current_id() > id; }, 15s);
  CHECK_MESSAGE(rejoined, "node " << id << " (pid " << paused.pid() << ") did not join again after it ran on\n"
                                  << paused.cluster_lines());
  MESSAGE("resumed " << static_cast<int>(resumed_at - paused_at) << " ms after the pause; joined again as node "
                     << paused.current_id() << " after " << static_cast<int>(wall_now_ms() - resumed_at) << " ms");
  cluster.set_live(0, true);
  std::this_thread::sleep_for(3s);
  load.stop();
  wait_settled(cluster, 60s);

  const Log log = read_log(cluster.database());
  const auto calls = service.calls();
  const size_t calls_before = check_quiet_after_takeover(log, calls, id, taken_at, position);
  CHECK_MESSAGE(calls_before > 0, "no call carried X-Usher-Node: " << id << ", so none could be told from another's");
  const Totals t = check_cluster_log(log, load.acknowledged(), load.conflicts(), calls);
  CHECK_MESSAGE(t.unattributed_calls == 0, t.unattributed_calls << " calls carried no X-Usher-Node");
  MESSAGE("pause test: " << load.acknowledged().size() << " starts acknowledged; " << to_string(t));
}
