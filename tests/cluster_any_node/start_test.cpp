// Starts on any node (docs/cluster.md, "Any node answers"): one idempotency
// key gives one saga whichever nodes it is sent to, and `?wait=` on a node
// that does not hold the saga follows it in the log until it settles.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "cluster_any_node/any_node_harness.h"

using namespace usher::any_node;

TEST_CASE("a start sent to B with ?wait= and the key of a saga running on A answers 200 with that saga once it "
          "settled") {
  TempDir dir;
  SwitchService service;
  service.set("hold", SwitchService::slow(2s));
  write_switch_workflow(dir, service);
  const std::string database = cluster_database(dir);
  Cluster cluster(dir, database, 2);
  const int64_t a = cluster.node(0).first_id();

  auto first = start_on(cluster.node(0).port(), seat(1), "wait-key");
  REQUIRE_MESSAGE(first.status == 201, first.status << " " << first.error << first.body);
  const std::string id = id_of(first);
  REQUIRE(eventually([&] { return !service.calls("hold").empty(); }, 10s));

  const auto sent = std::chrono::steady_clock::now();
  auto waited = start_on(cluster.node(1).port(), seat(1), "wait-key", "10s");
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
  CHECK_MESSAGE(waited.status == 200, waited.status << " " << waited.error << waited.body);
  const json saga = waited.json().is_object() ? waited.json() : json::object();
  CHECK(saga.value("id", "") == id);
  CHECK_MESSAGE(saga.value("status", "") == "completed", "answered before the saga settled: " << waited.body);
  CHECK_MESSAGE(status_of(database, id) == "completed", status_of(database, id));
  // The saga stayed where it was started: B followed it in the log.
  const LoggedSaga logged = read_log(database).at(id);
  CHECK_MESSAGE((logged.owner == a && logged.fence == 1), describe(logged));
  for (const LoggedEvent& e : logged.events) CHECK_MESSAGE(e.node == a, describe(logged));
  MESSAGE("B answered the waiting start after " << took.count() << " ms");
}

TEST_CASE("one idempotency key sent to A and B at the same moment gives one saga") {
  TempDir dir;
  SwitchService service;
  write_switch_workflow(dir, service);
  const std::string database = cluster_database(dir);
  Cluster cluster(dir, database, 2);

  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    const std::string key = "same-moment-" + std::to_string(round);
    HttpReply on_a, on_b;
    std::atomic<int> ready{0};
    auto send = [&](uint16_t port, HttpReply& out) {
      ++ready;
      while (ready.load() < 2) std::this_thread::yield();
      out = start_on(port, seat(round), key);
    };
    std::thread ta([&] { send(cluster.node(0).port(), on_a); });
    std::thread tb([&] { send(cluster.node(1).port(), on_b); });
    ta.join();
    tb.join();
    const std::string id_a = id_of(on_a), id_b = id_of(on_b);
    CHECK_MESSAGE(((on_a.status == 201 && on_b.status == 200) || (on_a.status == 200 && on_b.status == 201)),
                  "A answered " << on_a.status << " " << on_a.error << on_a.body << "; B answered " << on_b.status
                                << " " << on_b.error << on_b.body);
    CHECK(!id_a.empty());
    CHECK_MESSAGE(id_a == id_b, "A answered " << id_a << ", B answered " << id_b);
    CHECK(query_int(database, "SELECT count(*) FROM sagas WHERE idempotency_key = '" + key + "'") == 1);
  }
  CHECK(eventually([&] { return cluster.unsettled() == 0; }, 20s));
  CHECK(query_int(database, "SELECT count(*) FROM sagas WHERE status <> 'completed'") == 0);
}

TEST_CASE("a start with ?wait= waiting on B for a saga of A is answered once the saga settled on B, after A was "
          "killed and B took the saga over") {
  TempDir dir;
  SwitchService service;
  service.set("hold", SwitchService::slow(20s));  // A's call is never answered in the test's time
  write_switch_workflow(dir, service);
  const std::string database = cluster_database(dir);
  Cluster cluster(dir, database, 2);
  const int64_t a = cluster.node(0).first_id(), b = cluster.node(1).first_id();

  auto first = start_on(cluster.node(0).port(), seat(1), "taken-key");
  REQUIRE_MESSAGE(first.status == 201, first.status << " " << first.error << first.body);
  const std::string id = id_of(first);
  REQUIRE(eventually([&] { return !service.calls("hold").empty(); }, 10s));
  service.set("hold", SwitchService::ok());  // B's call again is answered at once

  HttpReply waited;
  std::thread waiter([&] { waited = start_on(cluster.node(1).port(), seat(1), "taken-key", "10s"); });
  std::this_thread::sleep_for(300ms);
  const auto killed_at = std::chrono::steady_clock::now();
  cluster.node(0).kill();
  waiter.join();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);

  CHECK_MESSAGE(waited.status == 200, waited.status << " " << waited.error << waited.body);
  const json saga = waited.json().is_object() ? waited.json() : json::object();
  CHECK(saga.value("id", "") == id);
  CHECK_MESSAGE(saga.value("status", "") == "completed", "answered before the saga settled: " << waited.body << "\n"
                                                          << cluster.cluster_lines());
  const LoggedSaga logged = read_log(database).at(id);
  check_moved(logged, a, b);
  MESSAGE("B answered the waiting start " << took.count() << " ms after A's SIGKILL");
}
