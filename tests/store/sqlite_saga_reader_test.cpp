// What the SQLite store adds on the read side: read-only readers on the
// file, readers holding a snapshot beside the writer, a writer killed mid-way.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>

#include <sys/wait.h>
#include <unistd.h>

#include "store/open_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::row;
using test::saga_id;

TEST_CASE("a read-only reader works while the writer is open") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_sqlite_log(path);
  REQUIRE(append_and_wait(*log, {event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))}).is_ok());
  auto reader = test::open_sqlite_log_reader(path, /*read_only=*/true);
  auto first = reader->saga(saga_id(1));
  REQUIRE(first.is_ok());
  CHECK(first->has_value());
  // Each call reads the latest committed state.
  REQUIRE(append_and_wait(*log, {event(saga_id(2), 1, EventType::kSagaStarted)}, {row(saga_id(2))}).is_ok());
  auto second = reader->saga(saga_id(2));
  REQUIRE(second.is_ok());
  CHECK(second->has_value());
}

TEST_CASE("a reader holding a read transaction does not block appends") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_sqlite_log(path);
  REQUIRE(append_and_wait(*log, {event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))}).is_ok());

  auto append_new = [&](int n) {
    std::promise<Status> outcome;
    auto result = outcome.get_future();
    log->append({event(saga_id(n), 1, EventType::kSagaStarted)}, {row(saga_id(n))},
                [&](Status st) { outcome.set_value(std::move(st)); });
    // A liveness bound, not a performance one: a blocked writer never answers.
    REQUIRE(result.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    return result.get();
  };

  SUBCASE("inside for_each_unfinished, mid-iteration") {
    auto reader = test::open_sqlite_log_reader(path);
    int calls = 0;
    Status s = reader->for_each_unfinished([&](const SagaRow&, std::vector<Event>&&) {
      ++calls;
      CHECK(append_new(100 + calls).is_ok());
    });
    CHECK(s.is_ok());
    CHECK(calls == 1);  // the snapshot taken at the start does not see the new sagas
  }
  SUBCASE("an explicit transaction on another connection") {
    test::RawDb raw(path, SQLITE_OPEN_READONLY);
    raw.exec("BEGIN");
    CHECK(raw.integer("SELECT count(*) FROM sagas") == 1);
    CHECK(append_new(2).is_ok());
    CHECK(append_new(3).is_ok());
    CHECK(raw.integer("SELECT count(*) FROM sagas") == 1);  // still its snapshot
    raw.exec("COMMIT");
    CHECK(raw.integer("SELECT count(*) FROM sagas") == 3);
  }
}

TEST_CASE("a read-only reader opens a log whose writer was killed") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child must never return into doctest: it exits or is killed.
    auto log = open_sqlite_store(path, Durability::kFull);
    if (!log) ::_exit(2);
    std::promise<Status> outcome;
    auto result = outcome.get_future();
    (*log)->append({event(saga_id(1), 1, EventType::kSagaStarted), event(saga_id(1), 2, EventType::kStepScheduled, "pay")},
                   {row(saga_id(1), SagaStatus::kRunning, "book", 2)},
                   [&](Status st) { outcome.set_value(std::move(st)); });
    if (!result.get()) ::_exit(3);
    ::kill(::getpid(), SIGKILL);
    ::_exit(4);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(child, &wstatus, 0) == child);
  REQUIRE(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGKILL);
  CHECK(std::filesystem::exists(path + "-wal"));
  CHECK(std::filesystem::exists(path + "-shm"));

  {
    auto reader = test::open_sqlite_log_reader(path, /*read_only=*/true);
    auto events = reader->events(saga_id(1));
    REQUIRE(events.is_ok());
    CHECK(events->size() == 2);
    int unfinished = 0;
    CHECK(reader->for_each_unfinished([&](const SagaRow&, std::vector<Event>&&) { ++unfinished; }).is_ok());
    CHECK(unfinished == 1);
  }
  // And the next writer recovers the file and carries on.
  auto log = test::open_sqlite_log(path);
  CHECK(append_and_wait(*log, {event(saga_id(1), 3, EventType::kStepSucceeded, "pay")}, {}).is_ok());
}

}  // namespace
}  // namespace usher
