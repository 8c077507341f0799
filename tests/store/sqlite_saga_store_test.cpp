// What the SQLite store adds to the SagaStore contract: its file (WAL,
// permissions, the synchronous level), and another process holding its lock.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <thread>

#include "store/open_store.h"
#include "store/sqlite_saga_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::row;
using test::saga_id;

TEST_CASE("appends fail as unavailable while another process holds the write lock, and work after") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_sqlite_log(path);
  {
    test::RawDb other(path);
    other.exec("BEGIN IMMEDIATE");
    // The writer waits out its busy timeout (5 s), then fails the whole batch.
    std::promise<void> entered;
    std::promise<void> release;
    log->append({}, {}, [&, wait = release.get_future().share()](Status) {
      entered.set_value();
      wait.wait();
    });
    entered.get_future().wait();
    std::vector<Status> outcomes(3);
    for (int i = 0; i < 3; ++i) {
      log->append({event(saga_id(i), 1, EventType::kSagaStarted)}, {row(saga_id(i))},
                  [&outcomes, i](Status s) { outcomes[static_cast<size_t>(i)] = std::move(s); });
    }
    release.set_value();
    log->flush();
    for (const Status& s : outcomes) {
      CHECK(s.code() == StatusCode::kUnavailable);
      CHECK(s.message().find("locked") != std::string::npos);
    }
    other.exec("ROLLBACK");
  }
  CHECK(append_and_wait(*log, {event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))}).is_ok());
  auto reader = test::open_sqlite_log_reader(path);
  auto counts = reader->count_by_status();
  REQUIRE(counts.is_ok());
  CHECK(counts->front().second == 1);
}

TEST_CASE("the durability setting is applied to the write connection") {
  test::TempDir dir;
  SUBCASE("full") {
    auto log = SqliteSagaStore::open(dir.file("full.db"), Durability::kFull, 8192);
    REQUIRE(log.is_ok());
    CHECK((*log)->synchronous_level() == 2);
  }
  SUBCASE("normal") {
    auto log = SqliteSagaStore::open(dir.file("normal.db"), Durability::kNormal, 8192);
    REQUIRE(log.is_ok());
    CHECK((*log)->synchronous_level() == 1);
  }
}

TEST_CASE("the log is in WAL mode") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_sqlite_log(path);
  test::RawDb raw(path);
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
}

TEST_CASE("a log without a file is refused") {
  for (const char* path : {":memory:", ""}) {
    auto log = open_sqlite_store(path, Durability::kFull);
    CHECK(log.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a new log and its -wal and -shm are readable by their owner only, whatever the umask") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  const mode_t old = ::umask(0);  // the most permissive: usher must not rely on it
  auto log = test::open_sqlite_log(path);
  ::umask(old);
  REQUIRE(append_and_wait(*log, {event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))}).is_ok());
  for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
    struct stat st {};
    REQUIRE_MESSAGE(::stat(file.c_str(), &st) == 0, file);
    CHECK_MESSAGE((st.st_mode & 0777) == 0600, file << " has mode " << std::oct << (st.st_mode & 0777));
  }
}

}  // namespace
}  // namespace usher
