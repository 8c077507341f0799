// A node stalls inside its own commit while its lease ends and another node
// claims its sagas. The stall is made in the database: a trigger the test
// installs on `sagas` sleeps (pg_sleep), once per transaction, in an append
// of the node named in a flag table — after the append checked the lease and
// while it holds its sagas' rows. Meanwhile the test ends that node's lease,
// as if its renewals had stopped, so the other node claims every saga it can.
// The log must still have one writer per fence, no gap, no action sent again
// after its success was committed, and every saga must finish.
#include <doctest/doctest.h>

#include "cluster/cluster_checks.h"

using namespace usher::cluster;

namespace {

// The stall: an UPDATE of a saga row by an append of node `stall.node`
// (owner unchanged, last_seq moving on) sleeps `stall.seconds` the first
// time in its transaction.
const char* kStallTrigger = R"sql(
CREATE TABLE cluster_test_stall (node bigint PRIMARY KEY, seconds float8 NOT NULL);
CREATE FUNCTION cluster_test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  pause float8;
BEGIN
  IF NEW.owner IS NOT DISTINCT FROM OLD.owner AND NEW.last_seq > OLD.last_seq
     AND coalesce(current_setting('cluster_test.stalled', true), '') <> 'yes' THEN
    SELECT seconds INTO pause FROM cluster_test_stall WHERE node = OLD.owner;
    IF pause IS NOT NULL THEN
      PERFORM set_config('cluster_test.stalled', 'yes', true);
      PERFORM pg_sleep(pause);
    END IF;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER cluster_test_stall BEFORE UPDATE ON sagas FOR EACH ROW EXECUTE FUNCTION cluster_test_stall();
)sql";

}  // namespace

TEST_CASE("a node stalled inside its commit while another claims its sagas: one writer per fence, no gap, nothing "
          "done twice, every saga finishes") {
  TempDir dir;
  RecordingService service(50ms, 300ms);
  write_cluster_workflow(dir, service);
  const std::string database = cluster_database(dir);
  Cluster cluster(dir, database, 2);  // the nodes made the schema; the trigger goes on it
  PgCluster::shared().query(database, kStallTrigger);
  Load load(cluster, 50ms);
  std::this_thread::sleep_for(3s);

  Node& stalled = cluster.node(0);
  const int64_t id = stalled.current_id();
  cluster.set_live(0, false);
  PgCluster::shared().query(database, "INSERT INTO cluster_test_stall VALUES (" + std::to_string(id) + ", 5)");
  const bool sleeping = eventually(
      [&] {
        return query_int(database, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND wait_event = 'PgSleep'") > 0;
      },
      10s);
  REQUIRE_MESSAGE(sleeping, "no append of node " << id << " reached the stall in 10 s");
  const double stall_seen_at = wall_now_ms();
  const std::string sleeper = PgCluster::shared().query(
      database, "SELECT application_name || ' pid ' || pid FROM pg_stat_activity WHERE wait_event = 'PgSleep'");
  // Its lease ends now, while the append sleeps; no further append stalls.
  PgCluster::shared().query(database, "UPDATE usher_nodes SET lease_until = clock_timestamp() WHERE id = " +
                                          std::to_string(id) + " RETURNING id");
  const double lease_ended_at = wall_now_ms();
  PgCluster::shared().query(database, "DELETE FROM cluster_test_stall");
  const size_t owned = cluster.owned_by(id).size();

  const bool taken = eventually([&] { return cluster.owned_by(id).empty(); }, 20s);
  const double taken_at = wall_now_ms();
  const int64_t position = feed_position(database);
  CHECK_MESSAGE(taken, "node " << id << " still owns " << cluster.owned_by(id).size()
                               << " running sagas 20 s after its lease was ended\n" << cluster.cluster_lines());
  const bool rejoined = eventually([&] { return stalled.current_id() > id; }, 15s);
  CHECK_MESSAGE(rejoined, "node " << id << " did not join again after its lease was ended\n" << stalled.cluster_lines());
  MESSAGE("node " << id << " stalled in a commit (" << sleeper << "), lease ended "
                  << static_cast<int>(lease_ended_at - stall_seen_at) << " ms after the stall was seen, owning "
                  << owned << " running sagas; all owned by others after "
                  << static_cast<int>(taken_at - lease_ended_at) << " ms; joined again as node "
                  << stalled.current_id());
  cluster.set_live(0, true);
  std::this_thread::sleep_for(3s);
  load.stop();
  wait_settled(cluster, 60s);

  const Log log = read_log(database);
  const auto calls = service.calls();
  const Totals t = check_cluster_log(log, load.acknowledged(), load.conflicts(), calls);
  check_quiet_after_takeover(log, calls, id, taken_at, position);

  // The stalled commit went through after the lease had ended (its check came
  // before): that is allowed, as nobody could claim those sagas meanwhile.
  size_t committed_late = 0;
  for (const auto& [saga_id, saga] : log)
    for (const LoggedEvent& e : saga.events) committed_late += e.node == id && e.committed_ms > lease_ended_at;

  // Once its lease was ended, the node learns it within a renewal (500 ms):
  // from then on nothing goes out under its old id. And every call for a saga
  // comes from a node that wrote to it (nobody died here, so each node that
  // claimed a saga wrote its next events) — a call from any other node would
  // be a commit's commands sent by a node that no longer held the saga.
  Findings f;
  std::map<std::string, std::set<std::string>> writers;
  for (const auto& [saga_id, saga] : log)
    for (const LoggedEvent& e : saga.events) writers[saga_id].insert(std::to_string(e.node));
  for (const auto& c : calls) {
    if (c.node == std::to_string(id) && wall_ms(c.at) > lease_ended_at + 1500)
      f.add("call under the old id after the lease ended",
            c.key + " arrived " + std::to_string(static_cast<int64_t>(wall_ms(c.at) - lease_ended_at)) +
                " ms after the lease was ended");
    if (!c.node.empty() && !writers[c.saga].contains(c.node))
      f.add("call from a node that never wrote to the saga", c.key + " from node " + c.node + " attempt " +
                                                                 std::to_string(c.attempt) + "\n  " +
                                                                 describe(log.at(c.saga)));
  }
  f.check({"call under the old id after the lease ended", "call from a node that never wrote to the saga"});
  MESSAGE("race test: " << load.acknowledged().size() << " starts acknowledged; " << to_string(t) << "; "
                        << committed_late << " events of node " << id << " committed after its lease was ended");
}
