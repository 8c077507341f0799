// The read side: listing, counting, recovery's input, and reading while the
// writer (in this process or a killed one) works on the same file.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>

#include <sys/wait.h>
#include <unistd.h>

#include "store/saga_log.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;
using test::event;
using test::row;
using test::saga_id;

std::unique_ptr<SagaLog> open_log(const std::string& path) {
  auto log = SagaLog::open(path, Durability::kFull);
  INFO(log.status().to_string());
  REQUIRE(log.is_ok());
  return std::move(log).value();
}

std::unique_ptr<SagaLogReader> open_reader(const std::string& path, bool read_only = true) {
  auto reader = SagaLogReader::open(path, read_only);
  INFO(reader.status().to_string());
  REQUIRE(reader.is_ok());
  return std::move(reader).value();
}

std::vector<std::string> ids_of(const Result<std::vector<SagaRow>>& rows) {
  REQUIRE(rows.is_ok());
  std::vector<std::string> ids;
  for (const SagaRow& r : *rows) ids.push_back(r.id);
  return ids;
}

std::vector<std::string> ids(std::initializer_list<int> numbers) {
  std::vector<std::string> out;
  for (int n : numbers) out.push_back(saga_id(n));
  return out;
}

TEST_CASE("sagas are listed newest first, filtered and paged by cursor") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  // 0..11: workflow "book" for even, "refund" for odd; every third completed.
  std::vector<SagaRow> rows;
  for (int i = 0; i < 12; ++i) {
    rows.push_back(row(saga_id(i), i % 3 == 0 ? SagaStatus::kCompleted : SagaStatus::kRunning,
                       i % 2 == 0 ? "book" : "refund"));
  }
  REQUIRE(append_and_wait(*log, {}, rows).is_ok());
  auto reader = open_reader(path);

  SUBCASE("pages follow the cursor until the end") {
    SagaFilter filter;
    filter.limit = 5;
    CHECK(ids_of(reader->list(filter)) == ids({11, 10, 9, 8, 7}));
    filter.after = saga_id(7);
    CHECK(ids_of(reader->list(filter)) == ids({6, 5, 4, 3, 2}));
    filter.after = saga_id(2);
    CHECK(ids_of(reader->list(filter)) == ids({1, 0}));
    filter.after = saga_id(0);
    CHECK(ids_of(reader->list(filter)).empty());
  }
  SUBCASE("by status") {
    SagaFilter filter;
    filter.status = SagaStatus::kCompleted;
    CHECK(ids_of(reader->list(filter)) == ids({9, 6, 3, 0}));
    filter.after = saga_id(6);
    CHECK(ids_of(reader->list(filter)) == ids({3, 0}));
  }
  SUBCASE("by workflow") {
    SagaFilter filter;
    filter.workflow = "refund";
    filter.limit = 3;
    CHECK(ids_of(reader->list(filter)) == ids({11, 9, 7}));
    filter.after = saga_id(7);
    CHECK(ids_of(reader->list(filter)) == ids({5, 3, 1}));
  }
  SUBCASE("by workflow and status") {
    SagaFilter filter;
    filter.workflow = "book";
    filter.status = SagaStatus::kRunning;
    CHECK(ids_of(reader->list(filter)) == ids({10, 8, 4, 2}));
    filter.workflow = "nothing";
    CHECK(ids_of(reader->list(filter)).empty());
  }
  SUBCASE("counts by status include every status") {
    auto counts = reader->count_by_status();
    REQUIRE(counts.is_ok());
    std::vector<std::pair<std::string, int64_t>> want = {
        {"running", 8}, {"compensating", 0}, {"completed", 4}, {"compensated", 0}, {"stuck", 0}};
    CHECK(*counts == want);
  }
}

TEST_CASE("for_each_unfinished skips finished sagas and groups events by saga in order") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  const std::string running = saga_id(1), completed = saga_id(2), compensating = saga_id(3),
                    compensated = saga_id(4), stuck = saga_id(5);
  // Interleaved across groups, as concurrent sagas are logged.
  REQUIRE(append_and_wait(*log,
                          {event(running, 1, EventType::kSagaStarted), event(completed, 1, EventType::kSagaStarted),
                           event(compensating, 1, EventType::kSagaStarted),
                           event(compensated, 1, EventType::kSagaStarted), event(stuck, 1, EventType::kSagaStarted)},
                          {})
              .is_ok());
  REQUIRE(append_and_wait(*log,
                          {event(compensating, 2, EventType::kStepScheduled, "reserve"),
                           event(running, 2, EventType::kStepScheduled, "reserve"),
                           event(completed, 2, EventType::kSagaCompleted),
                           event(compensating, 3, EventType::kStepFailed, "reserve", {{"error", "no seats"}}),
                           event(compensated, 2, EventType::kSagaCompensated)},
                          {row(running, SagaStatus::kRunning, "book", 2), row(completed, SagaStatus::kCompleted),
                           row(compensating, SagaStatus::kCompensating, "book", 3),
                           row(compensated, SagaStatus::kCompensated), row(stuck, SagaStatus::kStuck)})
              .is_ok());
  auto reader = open_reader(path);

  std::vector<std::string> seen;
  std::map<std::string, std::vector<int64_t>> seqs;
  Status s = reader->for_each_unfinished([&](const SagaRow& r, std::vector<Event>&& events) {
    seen.push_back(r.id);
    for (const Event& e : events) {
      CHECK(e.saga_id == r.id);
      seqs[r.id].push_back(e.seq);
    }
    if (r.id == compensating) {
      CHECK(r.status == SagaStatus::kCompensating);
      CHECK(events.back().data == Json{{"error", "no seats"}});
      CHECK(events.back().step == "reserve");
    }
  });
  REQUIRE(s.is_ok());
  CHECK(seen == std::vector<std::string>{running, compensating, stuck});
  CHECK(seqs[running] == std::vector<int64_t>{1, 2});
  CHECK(seqs[compensating] == std::vector<int64_t>{1, 2, 3});
  CHECK(seqs[stuck] == std::vector<int64_t>{1});
}

TEST_CASE("a read-only reader works while the writer is open") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_log(path);
  REQUIRE(append_and_wait(*log, {event(saga_id(1), 1, EventType::kSagaStarted)}, {row(saga_id(1))}).is_ok());
  auto reader = open_reader(path, /*read_only=*/true);
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
  auto log = open_log(path);
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
    auto reader = open_reader(path);
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
    auto log = SagaLog::open(path, Durability::kFull);
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
    auto reader = open_reader(path, /*read_only=*/true);
    auto events = reader->events(saga_id(1));
    REQUIRE(events.is_ok());
    CHECK(events->size() == 2);
    int unfinished = 0;
    CHECK(reader->for_each_unfinished([&](const SagaRow&, std::vector<Event>&&) { ++unfinished; }).is_ok());
    CHECK(unfinished == 1);
  }
  // And the next writer recovers the file and carries on.
  auto log = open_log(path);
  CHECK(append_and_wait(*log, {event(saga_id(1), 3, EventType::kStepSucceeded, "pay")}, {}).is_ok());
}

}  // namespace
}  // namespace usher
