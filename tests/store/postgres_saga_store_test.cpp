// What the PostgreSQL store adds to the SagaStore contract: a connection that
// drops while a batch commits (its outcome then unknown to the client), a
// server that goes away and comes back, the schema's versions, and values
// PostgreSQL cannot store as they are. These run against this process's
// throwaway cluster whichever store the contract tests are run for.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "store/open_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::PgCluster;
using test::row;
using test::saga_id;

// A fresh database in the shared cluster, and its URI.
std::string fresh_database(const std::string& name) {
  PgCluster::shared().create_database(name);
  return PgCluster::shared().uri(name);
}

std::unique_ptr<SagaStore> open_pg(const std::string& uri, bool migrate = true) {
  auto store = open_postgres_store(uri, 8192, migrate);
  INFO(store.status().to_string());
  REQUIRE(store.is_ok());
  return std::move(store).value();
}

// Ends the writer's connection (application_name "usher") from the server side.
void terminate_writer(const std::string& database) {
  PgCluster::shared().query(database,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name = 'usher'");
}

TEST_CASE("connections cut while batches commit: every group is reported exactly as the log holds it") {
  const std::string database = "cut_while_committing";
  const std::string uri = fresh_database(database);
  auto store = open_pg(uri);

  // Cut the writer's connection at random moments while sagas are appended
  // 16 at a time (so the batches are groups of several): some cuts land
  // while a transaction is in flight, when whether it committed is unknown
  // until the store reconnects and reads the log.
  std::atomic<bool> stop{false};
  std::thread cutter([&] {
    std::mt19937 rng(42);
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(500, 15000)(rng)));
      terminate_writer(database);
    }
  });
  constexpr int kSagas = 600;
  std::map<std::string, Status> outcome;
  std::mutex mu;
  for (int i = 1; i <= kSagas; i += 16) {
    std::vector<std::future<void>> batch;
    for (int j = i; j < i + 16 && j <= kSagas; ++j) {
      auto done = std::make_shared<std::promise<void>>();
      batch.push_back(done->get_future());
      const std::string id = saga_id(j);
      store->append({event(id, 1, EventType::kSagaStarted), event(id, 2, EventType::kStepScheduled, "reserve")},
                    {row(id, SagaStatus::kRunning, "book-ticket", 2)}, [&, id, done](Status s) {
                      std::lock_guard lock(mu);
                      outcome[id] = std::move(s);
                      done->set_value();
                    });
    }
    for (auto& f : batch) f.wait();
  }
  stop = true;
  cutter.join();

  auto reader = open_postgres_reader(uri);
  REQUIRE(reader.is_ok());
  int ok = 0, failed = 0;
  for (const auto& [id, status] : outcome) {
    auto saga = (*reader)->saga(id);
    REQUIRE(saga.is_ok());
    auto events = (*reader)->events(id);
    REQUIRE(events.is_ok());
    if (status.is_ok()) {
      ++ok;
      CHECK_MESSAGE(saga->has_value(), id << " was reported written but is not in the log");
      CHECK(events->size() == 2);
    } else {
      ++failed;
      CHECK(status.code() == StatusCode::kUnavailable);
      CHECK_MESSAGE(!saga->has_value(), id << " was reported failed (" << status.message() << ") but is in the log");
      CHECK(events->empty());
    }
  }
  MESSAGE(ok << " groups written, " << failed << " failed while the connection was cut");
  CHECK(ok + failed == kSagas);
  CHECK(ok > 0);
  CHECK(failed > 0);

  // The store reconnects by itself.
  const std::string after = saga_id(kSagas + 1);
  Status last;
  for (int attempt = 0; attempt < 100; ++attempt) {
    last = append_and_wait(*store, {event(after, 1, EventType::kSagaStarted)}, {row(after)});
    if (last.is_ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK_MESSAGE(last.is_ok(), last.to_string());
}

TEST_CASE("a server killed and restarted: appends fail at once while it is down, an uncertain one waits for the truth") {
  const std::string database = "server_restart";
  const std::string uri = fresh_database(database);
  auto store = open_pg(uri);
  REQUIRE(append_and_wait(*store, {event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))}).is_ok());

  PgCluster::shared().kill_hard();
  // The first append after the crash goes out on the dead connection: the
  // store cannot tell whether the server took it, so it holds it until the
  // server is back and says.
  std::promise<Status> first;
  store->append({event(saga_id(2), 1, EventType::kSagaStarted)}, {row(saga_id(2))},
                [&](Status s) { first.set_value(std::move(s)); });
  auto first_outcome = first.get_future();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Later ones were never sent: they fail at once, so the engine refuses new sagas.
  const auto before = std::chrono::steady_clock::now();
  Status down = append_and_wait(*store, {event(saga_id(3), 1, EventType::kSagaStarted)}, {row(saga_id(3))});
  CHECK(down.code() == StatusCode::kUnavailable);
  MESSAGE("while down: " << down.message());
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));

  PgCluster::shared().start();
  REQUIRE(first_outcome.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  const Status held = first_outcome.get();
  MESSAGE("the append in flight at the crash: " << held.to_string());
  Status up;
  for (int attempt = 0; attempt < 200; ++attempt) {
    up = append_and_wait(*store, {event(saga_id(4), 1, EventType::kSagaStarted)}, {row(saga_id(4))});
    if (up.is_ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_MESSAGE(up.is_ok(), up.to_string());
  auto reader = open_postgres_reader(uri);
  REQUIRE(reader.is_ok());
  CHECK((*reader)->saga(saga_id(1))->has_value());
  CHECK((*reader)->saga(saga_id(2))->has_value() == held.is_ok());
  CHECK_FALSE((*reader)->saga(saga_id(3))->has_value());
  CHECK((*reader)->saga(saga_id(4))->has_value());
}

TEST_CASE("the schema: created by migrate, required by --no-migrate, a newer one refused") {
  const std::string database = "schema_versions";
  const std::string uri = fresh_database(database);

  auto unmigrated = open_postgres_store(uri, 8192, /*migrate=*/false);
  REQUIRE_FALSE(unmigrated.is_ok());
  CHECK(unmigrated.status().code() == StatusCode::kFailedPrecondition);
  CHECK(unmigrated.status().message().find("usher migrate") != std::string::npos);
  auto no_reader = open_postgres_reader(uri);
  CHECK(no_reader.status().code() == StatusCode::kFailedPrecondition);

  REQUIRE(migrate_store(uri).is_ok());
  REQUIRE(migrate_store(uri).is_ok());  // idempotent
  CHECK(PgCluster::shared().query(database, "SELECT version FROM usher_schema") ==
        std::to_string(kPostgresSchemaVersion));
  CHECK(open_postgres_store(uri, 8192, /*migrate=*/false).is_ok());

  PgCluster::shared().query(database, "UPDATE usher_schema SET version = 99");
  auto newer = open_postgres_store(uri);
  REQUIRE_FALSE(newer.is_ok());
  CHECK(newer.status().code() == StatusCode::kDataLoss);
  CHECK(migrate_store(uri).code() == StatusCode::kDataLoss);
}

TEST_CASE("values PostgreSQL cannot hold as they are are stored as U+FFFD, never refused") {
  const std::string database = "unstorable_values";
  const std::string uri = fresh_database(database);
  auto store = open_pg(uri);
  const std::string id = saga_id(1);
  // jsonb refuses the escape \u0000; text refuses NUL bytes and invalid UTF-8.
  SagaRow r = row(id);
  r.last_error = std::string("nul\0here", 8);
  r.idempotency_key = "key-\xff";
  REQUIRE(append_and_wait(*store, {event(id, 1, EventType::kSagaStarted, "", {{"name", std::string("a\0b", 3)}})},
                          {r})
              .is_ok());
  auto reader = open_postgres_reader(uri);
  REQUIRE(reader.is_ok());
  auto events = (*reader)->events(id).value();
  REQUIRE(events.size() == 1);
  CHECK(events[0].data["name"] == "a\xef\xbf\xbd" "b");
  auto saga = (*reader)->saga(id).value();
  REQUIRE(saga.has_value());
  CHECK(saga->last_error.find('\0') == std::string::npos);
  // The same key, made storable the same way, finds the saga.
  CHECK((*reader)->saga_id_by_idempotency_key("key-\xff").value() == std::optional<std::string>(id));
}

TEST_CASE("a saga id that is not a UUID is refused at append and finds nothing on read") {
  const std::string uri = fresh_database("not_uuids");
  auto store = open_pg(uri);
  Status s = append_and_wait(*store, {event("saga-1", 1, EventType::kSagaStarted)}, {row("saga-1")});
  CHECK(s.code() == StatusCode::kInvalidArgument);
  auto reader = open_postgres_reader(uri);
  REQUIRE(reader.is_ok());
  CHECK_FALSE((*reader)->saga("saga-1")->has_value());
  CHECK((*reader)->events("'; DROP TABLE sagas; --")->empty());
}

}  // namespace
}  // namespace usher
