// Where a publisher of the event feed keeps its position (publication_store.h),
// and how far the log has got (SagaStoreReader::last_position): against the
// store USHER_TEST_STORE names. The claim is SQLite's trivial one or
// PostgreSQL's advisory lock, which lives as long as its connection.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "store/publication_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::row;
using test::saga_id;

constexpr const char* kKafka = "kafka:usher.saga-events";

// A connection on the log at `path`, which test::open_store has made current.
std::unique_ptr<PublicationStore> open_publications(const std::string& path) {
  auto store = open_publication_store(test::saga_log_at(path));
  INFO(store.status().to_string());
  REQUIRE(store.is_ok());
  return std::move(store).value();
}

int64_t position_of(PublicationStore& store, const std::string& name) {
  auto position = store.position(name);
  INFO(position.status().to_string());
  REQUIRE(position.is_ok());
  return *position;
}

bool claim(PublicationStore& store, const std::string& name) {
  auto claimed = store.claim(name);
  INFO(claimed.status().to_string());
  REQUIRE(claimed.is_ok());
  return *claimed;
}

// After the holder's connection closes: the server releases its lock when the
// backend exits, a moment after the client has gone, so the claim is asked
// until it succeeds, within a few seconds.
bool claimed_soon(PublicationStore& store, const std::string& name) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!claim(store, name)) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST_CASE("a publication's position is 0 until one is saved, then the one saved") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto publications = open_publications(path);
  CHECK(position_of(*publications, kKafka) == 0);
  REQUIRE(publications->save(kKafka, 41).is_ok());
  CHECK(position_of(*publications, kKafka) == 41);
  REQUIRE(publications->save(kKafka, 42).is_ok());
  CHECK(position_of(*publications, kKafka) == 42);
}

TEST_CASE("a position only moves forward") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto publications = open_publications(path);
  REQUIRE(publications->save(kKafka, 100).is_ok());
  // A late save (a publisher that did not know it had been overtaken) keeps the higher.
  REQUIRE(publications->save(kKafka, 7).is_ok());
  CHECK(position_of(*publications, kKafka) == 100);
  REQUIRE(publications->save(kKafka, 100).is_ok());
  CHECK(position_of(*publications, kKafka) == 100);
  // And from another connection, as another node's publisher would.
  auto other = open_publications(path);
  REQUIRE(other->save(kKafka, 99).is_ok());
  CHECK(position_of(*publications, kKafka) == 100);
  CHECK(position_of(*other, kKafka) == 100);
}

TEST_CASE("a negative position is refused") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto publications = open_publications(path);
  CHECK(publications->save(kKafka, -1).code() == StatusCode::kInvalidArgument);
  CHECK(position_of(*publications, kKafka) == 0);
}

TEST_CASE("positions survive closing and reopening the log") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  {
    auto log = test::open_store(path);
    auto publications = open_publications(path);
    REQUIRE(publications->save(kKafka, 12345).is_ok());
    log->close();
  }
  auto log = test::open_store(path);
  auto publications = open_publications(path);
  CHECK(position_of(*publications, kKafka) == 12345);
}

TEST_CASE("publications are independent of each other") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto publications = open_publications(path);
  REQUIRE(publications->save("kafka:a", 5).is_ok());
  REQUIRE(publications->save("kafka:b", 9).is_ok());
  REQUIRE(publications->save("kafka:a", 6).is_ok());
  CHECK(position_of(*publications, "kafka:a") == 6);
  CHECK(position_of(*publications, "kafka:b") == 9);
  CHECK(position_of(*publications, "kafka:c") == 0);
}

TEST_CASE("a log of an older schema version is refused, not migrated") {
  if (test::testing_postgres()) return;  // PostgreSQL: schema_migration_test.cpp
  test::TempDir dir;
  const std::string path = dir.file("old.db");
  {
    test::RawDb raw(path);
    raw.exec("CREATE TABLE x (y); PRAGMA user_version = 2");
  }
  auto store = open_publication_store(path);
  CHECK(store.status().code() == StatusCode::kFailedPrecondition);
  CHECK(open_publication_store(dir.file("missing.db")).status().code() == StatusCode::kNotFound);
}

TEST_CASE("a claim is held by one connection at a time") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto first = open_publications(path);
  CHECK(claim(*first, kKafka));
  CHECK(claim(*first, kKafka));  // again: still its own
  auto second = open_publications(path);
  if (!test::testing_postgres()) {
    // SQLite: the log has one process, so its publisher has no rival.
    CHECK(claim(*second, kKafka));
    return;
  }
  CHECK_FALSE(claim(*second, kKafka));
  CHECK(claim(*second, "kafka:another-topic"));  // another publication is another lock
  CHECK(claim(*first, kKafka));
  // The holder's connection closes (its node stopped): the next claim gets it.
  first.reset();
  CHECK(claimed_soon(*second, kKafka));
  auto third = open_publications(path);
  CHECK_FALSE(claim(*third, kKafka));
}

TEST_CASE("a claim is lost with its connection and claimed anew") {
  if (!test::testing_postgres()) return;
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto first = open_publications(path);
  REQUIRE(claim(*first, kKafka));
  REQUIRE(first->save(kKafka, 10).is_ok());

  // The server ends the session (as it does when its keepalives find the
  // client gone); wait until the backend is gone, and its lock with it.
  const std::string publishers =
      "FROM pg_stat_activity WHERE application_name = 'usher publisher' AND datname = current_database()"
      " AND pid <> pg_backend_pid()";
  test::query_log(path, "SELECT pg_terminate_backend(pid) " + publishers);
  for (int i = 0; test::query_log(path, "SELECT count(*) " + publishers) != "0"; ++i) {
    REQUIRE(i < 500);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  // A save on the lost connection is not known to have happened.
  CHECK(first->save(kKafka, 20).code() == StatusCode::kUnavailable);
  // Nor is a save made on a new connection behind the caller's back: the
  // claim went with the old one, so it must be claimed again first.
  CHECK(first->save(kKafka, 20).code() == StatusCode::kUnavailable);
  auto second = open_publications(path);
  CHECK(claim(*second, kKafka));
  // The first reconnects and asks again: the publication is the second's now.
  CHECK_FALSE(claim(*first, kKafka));
  CHECK(position_of(*first, kKafka) == 10);
  second.reset();
  CHECK(claimed_soon(*first, kKafka));
}

TEST_CASE("last_position is 0 for an empty log, then the last committed event's") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto reader = test::open_store_reader(path);
  auto empty = reader->last_position();
  REQUIRE(empty.is_ok());
  CHECK(*empty == 0);

  const std::string a = saga_id(1), b = saga_id(2);
  REQUIRE(append_and_wait(*log, {event(a, 1, EventType::kSagaStarted)}, {row(a)}).is_ok());
  REQUIRE(append_and_wait(*log, {event(b, 1, EventType::kSagaStarted), event(b, 2, EventType::kStepScheduled, "pay")},
                          {row(b, SagaStatus::kRunning, "book-ticket", 2)})
              .is_ok());
  auto all = reader->events_after(0, 100);
  REQUIRE(all.is_ok());
  REQUIRE(all->size() == 3);
  auto last = reader->last_position();
  REQUIRE(last.is_ok());
  CHECK(*last == all->back().position);

  SagaRow a2 = row(a, SagaStatus::kRunning, "book-ticket", 2);
  a2.prior_seq = 1;
  REQUIRE(append_and_wait(*log, {event(a, 2, EventType::kStepScheduled, "hold")}, {a2}).is_ok());
  auto after = reader->last_position();
  REQUIRE(after.is_ok());
  CHECK(*after > *last);
  auto rest = reader->events_after(*last, 100);
  REQUIRE(rest.is_ok());
  REQUIRE(rest->size() == 1);
  CHECK(rest->front().position == *after);
}

}  // namespace
}  // namespace usher
