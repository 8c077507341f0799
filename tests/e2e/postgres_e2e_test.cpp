// `usher serve --db postgresql://…` when the database fails under it: the
// PostgreSQL server killed with SIGKILL mid-run and restarted, and the
// writer's connection cut while it commits. usher keeps running throughout.
// These run in e2e_postgres only (USHER_TEST_STORE=postgres).
#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>

#include "e2e_harness.h"

using namespace usher::e2e;
using usher::test::PgCluster;

namespace {

std::map<std::string, int> calls_by_key(const json& calls) {
  std::map<std::string, int> n;
  for (const json& e : calls) ++n[e["idempotency_key"].get<std::string>()];
  return n;
}

}  // namespace

TEST_CASE("PostgreSQL killed with SIGKILL mid-run and restarted: every acknowledged saga finishes, nothing "
          "logged as done is sent again") {
  if (!usher::test::testing_postgres()) return;  // e2e_postgres only
  TempDir dir;
  Services services;
  write_workflow(dir, services, patient_workflow());
  // Sagas stay in flight: charges fail 30 times before the pivot, notify
  // fails until switched back after it.
  services.control("payments", "charge", "transient", 30);
  services.control("notifier", "send", "transient");
  Server server(dir);
  const std::string database = usher::test::pg_database_at(dir.file("usher.db"));

  constexpr int kSagas = 40;
  std::vector<std::string> ids;
  std::map<std::string, bool> declined;
  for (int i = 0; i < kSagas; ++i) {
    const bool decline = i % 5 == 0;
    auto r = server.start(booking(decline ? 5000 : 100 + i, i % 3, "fan-" + std::to_string(i)));
    REQUIRE_MESSAGE(r.status == 201, "start " << i << ": " << r.status << " " << r.error << r.body);
    ids.push_back(r.json()["id"]);
    declined[ids.back()] = decline;
  }
  REQUIRE(eventually([&] { return sagas_notified(services) >= 5; }));

  PgCluster& pg = PgCluster::shared();
  const int port = pg.port();
  pg.kill_hard();

  // While the database is down a new saga is refused with 503, promptly.
  const auto refused_at = std::chrono::steady_clock::now();
  auto refused = server.start(booking(100, 0, "fan-late"));
  CHECK(refused.status == 503);
  CHECK(std::chrono::steady_clock::now() - refused_at < 10s);

  // What was durable at the crash, read on a port usher does not know, so
  // usher cannot add to it meanwhile. Calls the services saw by then: with
  // the log down, usher can send nothing new (the write-ahead rule).
  std::this_thread::sleep_for(500ms);
  pg.start_on_port(usher::test::pg_detail::free_port());
  std::set<std::string> succeeded_at_crash;  // "saga:step:action" keys whose success was durable
  {
    const std::string keys = pg.query(
        database,
        "SELECT string_agg(saga_id::text || ':' || step || ':action', ',') FROM saga_events "
        "WHERE type = 'StepSucceeded' AND data->>'kind' = 'action'");
    for (size_t at = 0; at < keys.size();) {
      size_t comma = keys.find(',', at);
      if (comma == std::string::npos) comma = keys.size();
      succeeded_at_crash.insert(keys.substr(at, comma - at));
      at = comma + 1;
    }
  }
  const auto calls_at_crash = calls_by_key(all_calls(services));
  pg.stop();
  pg.start_on_port(port);
  MESSAGE(succeeded_at_crash.size() << " actions were logged as done at the crash");
  REQUIRE(!succeeded_at_crash.empty());

  services.control("payments", "charge", "ok");
  services.control("notifier", "send", "ok");
  for (const auto& id : ids) {
    CAPTURE(id);
    json saga = server.settled(id, 60s);
    CHECK(saga["status"] == (declined[id] ? "compensated" : "completed"));
  }
  const json calls = all_calls(services);
  const auto calls_at_end = calls_by_key(calls);
  for (const std::string& key : succeeded_at_crash) {
    auto before = calls_at_crash.find(key);
    auto after = calls_at_end.find(key);
    REQUIRE(after != calls_at_end.end());
    const bool same = before != calls_at_crash.end() && after->second == before->second;
    CHECK_MESSAGE(same, key << " was sent again after its success was logged");
  }
  for (const auto& id : ids) check_done_once(calls, id);

  // usher took new sagas again by itself.
  auto again = server.start(booking(100, 0, "fan-after"));
  CHECK(again.status == 201);
}

TEST_CASE("the writer's connection cut again and again while it commits: no saga is lost or done twice") {
  if (!usher::test::testing_postgres()) return;  // e2e_postgres only
  TempDir dir;
  Services services;
  write_workflow(dir, services, patient_workflow());
  Server server(dir);
  const std::string database = usher::test::pg_database_at(dir.file("usher.db"));

  std::atomic<bool> stop{false};
  std::atomic<int> cuts{0};
  std::thread cutter([&] {
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      PgCluster::shared().query(database,
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND application_name = 'usher'");
      ++cuts;
    }
  });
  std::vector<std::string> acknowledged;
  std::map<std::string, bool> declined;
  int refused = 0;
  for (int i = 0; i < 60; ++i) {
    const bool decline = i % 4 == 0;
    auto r = server.start(booking(decline ? 5000 : 100 + i, i % 3, "fan-" + std::to_string(i)));
    if (r.status == 201) {
      acknowledged.push_back(r.json()["id"]);
      declined[acknowledged.back()] = decline;
    } else {
      CHECK_MESSAGE(r.status == 503, r.status << " " << r.body);
      ++refused;
    }
  }
  // Let the sagas run into more cuts, then stop cutting.
  std::this_thread::sleep_for(1s);
  stop = true;
  cutter.join();
  MESSAGE(cuts.load() << " cuts; " << acknowledged.size() << " sagas acknowledged, " << refused << " refused with 503");
  REQUIRE(!acknowledged.empty());
  for (const auto& id : acknowledged) {
    CAPTURE(id);
    json saga = server.settled(id, 60s);
    CHECK(saga["status"] == (declined[id] ? "compensated" : "completed"));
  }
  const json calls = all_calls(services);
  for (const auto& id : acknowledged) check_done_once(calls, id);
}
