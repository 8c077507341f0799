// The saga log under storage faults, below the engine: while writes fail,
// every append reports kUnavailable and nothing of it reaches the file; once
// the fault clears the same log writes again; slow syncs delay commits and
// lose nothing.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "exec/engine_fixture.h"
#include "fault_vfs.h"
#include "store/open_store.h"

namespace usher {
namespace {

using test::FaultScope;
using test::FaultVfs;
using test::WriteFault;

std::string id_of(int n) { return "saga-" + std::to_string(1000 + n); }

// A saga's first group as the engine writes it: several events and the
// projection row, so "half written" has something to be half of.
struct Group {
  std::vector<Event> events;
  std::vector<SagaRow> rows;
};

Group started_group(const std::string& id) {
  Group g;
  const int64_t t = 1'700'000'000'000'000;
  for (int64_t seq = 1; seq <= 3; ++seq) {
    Event e;
    e.saga_id = id;
    e.seq = seq;
    e.type = seq == 1 ? EventType::kSagaStarted : EventType::kStepScheduled;
    e.step = seq == 1 ? "" : "reserve";
    // Large enough that a group spans several WAL pages.
    e.data = {{"pad", std::string(3000, static_cast<char>('a' + seq))}};
    e.occurred_at = t + seq;
    e.causation_seq = seq - 1;
    g.events.push_back(std::move(e));
  }
  SagaRow row;
  row.id = id;
  row.workflow = "booking";
  row.version = 1;
  row.definition_hash = "hash";
  row.current_step = "reserve";
  row.idempotency_key = "key-" + id;
  row.created_at = t;
  row.updated_at = t + 3;
  row.last_seq = 3;
  g.rows.push_back(std::move(row));
  return g;
}

Status append_and_wait(SagaStore& log, Group g) {
  std::promise<Status> outcome;
  auto result = outcome.get_future();
  log.append(std::move(g.events), std::move(g.rows), [&](Status s) { outcome.set_value(std::move(s)); });
  return result.get();
}

std::unique_ptr<SagaStore> open_faulty_log(const std::string& path) {
  auto log = open_sqlite_store(path, Durability::kFull, 8192, test::kFaultVfsName);
  REQUIRE_MESSAGE(log.is_ok(), log.status().to_string());
  return std::move(log).value();
}

// What a reader with SQLite's default VFS finds of one saga: its event count
// and whether its row exists.
struct Seen {
  size_t events = 0;
  bool row = false;
};

Seen seen(const std::string& path, const std::string& id) {
  auto reader = open_sqlite_reader(path, true);
  REQUIRE_MESSAGE(reader.is_ok(), reader.status().to_string());
  auto events = (*reader)->events(id);
  REQUIRE_MESSAGE(events.is_ok(), events.status().to_string());
  auto row = (*reader)->saga(id);
  REQUIRE_MESSAGE(row.is_ok(), row.status().to_string());
  return Seen{events->size(), row->has_value()};
}

// PRAGMA integrity_check through a connection of its own.
std::string integrity(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
  return out;
}

}  // namespace

TEST_CASE("while writes fail, appends report unavailable and nothing half-written reaches the log") {
  FaultScope faults;
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_faulty_log(path);
  REQUIRE(append_and_wait(*log, started_group(id_of(0))).is_ok());

  WriteFault fault = WriteFault::kIoError;
  SUBCASE("I/O error") { fault = WriteFault::kIoError; }
  SUBCASE("disk full") { fault = WriteFault::kDiskFull; }
  faults->fail_writes(fault);
  const uint64_t refused_before = faults->failed_writes();

  // One at a time, then a burst that the writer takes as one batch.
  for (int i = 1; i <= 3; ++i) {
    Status s = append_and_wait(*log, started_group(id_of(i)));
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK_MESSAGE(s.message().find(path) != std::string::npos, s.message());
  }
  std::vector<std::future<Status>> burst;
  for (int i = 4; i <= 20; ++i) {
    auto p = std::make_shared<std::promise<Status>>();
    burst.push_back(p->get_future());
    Group g = started_group(id_of(i));
    log->append(std::move(g.events), std::move(g.rows), [p](Status s) { p->set_value(std::move(s)); });
  }
  for (auto& f : burst) CHECK(f.get().code() == StatusCode::kUnavailable);
  CHECK(faults->failed_writes() > refused_before);

  // Seen by a reader while the fault is still on, and again after: none of it.
  for (int i = 1; i <= 20; ++i) {
    Seen s = seen(path, id_of(i));
    CHECK(s.events == 0);
    CHECK_FALSE(s.row);
  }

  faults->clear();
  // The same log, without reopening, writes again: the refused sagas too.
  for (int i = 1; i <= 20; ++i) CHECK(append_and_wait(*log, started_group(id_of(i))).is_ok());
  log->close();
  for (int i = 0; i <= 20; ++i) {
    Seen s = seen(path, id_of(i));
    CHECK(s.events == 3);
    CHECK(s.row);
  }
  CHECK(integrity(path) == "ok");
}

TEST_CASE("a store_definition refused by a full disk is reported, and stored once the disk has room") {
  FaultScope faults;
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_faulty_log(path);
  faults->fail_writes(WriteFault::kDiskFull);
  Status s = log->store_definition("h1", "booking", 1, std::string(10000, 'y'));
  CHECK(s.code() == StatusCode::kUnavailable);
  faults->clear();
  CHECK(log->store_definition("h1", "booking", 1, std::string(10000, 'y')).is_ok());
  log->close();
  auto reader = open_sqlite_reader(path, true);
  REQUIRE(reader.is_ok());
  auto source = (*reader)->definition_source("h1");
  REQUIRE(source.is_ok());
  CHECK(*source == std::optional<std::string>(std::string(10000, 'y')));
}

TEST_CASE("slow syncs delay commits but lose nothing, and batch the appends that wait") {
  FaultScope faults;
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = open_faulty_log(path);
  faults->slow_syncs(std::chrono::milliseconds(50));
  const uint64_t syncs_before = faults->syncs();
  const auto start = std::chrono::steady_clock::now();

  constexpr int kSagas = 60;
  std::vector<std::future<Status>> outcomes;
  for (int i = 0; i < kSagas; ++i) {
    auto p = std::make_shared<std::promise<Status>>();
    outcomes.push_back(p->get_future());
    Group g = started_group(id_of(i));
    log->append(std::move(g.events), std::move(g.rows), [p](Status s) { p->set_value(std::move(s)); });
  }
  for (auto& f : outcomes) CHECK(f.get().is_ok());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= std::chrono::milliseconds(50));
  // Group commit: the appends that queue behind a slow sync share the next one.
  const SagaStoreStats stats = log->stats();
  CHECK(stats.commits < kSagas / 2);
  CHECK(faults->syncs() > syncs_before);
  MESSAGE(kSagas << " appends with 50 ms syncs: " << stats.commits << " commits in "
                 << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms");
  log->close();
  for (int i = 0; i < kSagas; ++i) CHECK(seen(path, id_of(i)).events == 3);
}

}  // namespace usher
