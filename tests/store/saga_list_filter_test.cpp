// Finding sagas (docs/api.md): the list filters by idempotency key,
// correlation id and start time, and the counts by status. Every store runs
// these (store_test_util.h); the SQLite query plans are checked at the end.
#include <doctest/doctest.h>

#include <cstdio>

#include "store/list_filter.h"
#include "store_test_util.h"

namespace usher {
namespace {

using test::append_and_wait;

constexpr int64_t kT0 = 1'780'000'000'000'000;  // µs, 2026-05-28

// A saga id as usher makes it for a saga started at `created_us` (UUIDv7:
// its first 48 bits are the milliseconds), told apart by `n`.
std::string id_at(int64_t created_us, int n) {
  std::string id = smallest_saga_id_at(created_us / 1000);
  char tail[32];
  std::snprintf(tail, sizeof tail, "7000-8000-%012d", n);
  return id.replace(14, std::string::npos, tail);
}

SagaRow saga(const std::string& id, int64_t created_us, SagaStatus status = SagaStatus::kRunning) {
  SagaRow r = test::row(id, status);
  r.created_at = created_us;
  r.updated_at = created_us + 5;
  return r;
}

std::vector<std::string> ids_of(const Result<std::vector<SagaRow>>& rows) {
  INFO(rows.status().to_string());
  REQUIRE(rows.is_ok());
  std::vector<std::string> ids;
  for (const SagaRow& r : *rows) ids.push_back(r.id);
  return ids;
}

TEST_CASE("sagas are found by idempotency key and by correlation id, newest first") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  std::vector<SagaRow> rows;
  for (int i = 0; i < 6; ++i) {
    SagaRow r = saga(id_at(kT0 + i * 1000, i), kT0 + i * 1000, i == 4 ? SagaStatus::kCompleted : SagaStatus::kRunning);
    r.idempotency_key = "order-" + std::to_string(1000 + i);
    if (i != 3) r.correlation_id = i % 2 == 0 ? "basket-even" : "basket-odd";
    rows.push_back(r);
  }
  REQUIRE(append_and_wait(*log, {}, rows).is_ok());
  auto reader = test::open_store_reader(path);

  SUBCASE("an idempotency key finds its one saga") {
    SagaFilter f;
    f.idempotency_key = "order-1002";
    CHECK(ids_of(reader->list(f)) == std::vector<std::string>{rows[2].id});
    f.idempotency_key = "order-9999";
    CHECK(ids_of(reader->list(f)).empty());
    f.idempotency_key = "order-1004";
    f.status = SagaStatus::kRunning;  // it is completed
    CHECK(ids_of(reader->list(f)).empty());
    f.status = SagaStatus::kCompleted;
    CHECK(ids_of(reader->list(f)) == std::vector<std::string>{rows[4].id});
  }
  SUBCASE("a correlation id finds its sagas, paged") {
    SagaFilter f;
    f.correlation_id = "basket-even";
    CHECK(ids_of(reader->list(f)) == std::vector<std::string>{rows[4].id, rows[2].id, rows[0].id});
    f.limit = 2;
    CHECK(ids_of(reader->list(f)) == std::vector<std::string>{rows[4].id, rows[2].id});
    f.after = rows[2].id;
    CHECK(ids_of(reader->list(f)) == std::vector<std::string>{rows[0].id});
    f = {};
    f.correlation_id = "basket-odd";
    CHECK(ids_of(reader->list(f)) == std::vector<std::string>{rows[5].id, rows[1].id});  // 3 has none
    f.status = SagaStatus::kCompleted;
    CHECK(ids_of(reader->list(f)).empty());
    f = {};
    f.correlation_id = "";  // "none" is not a correlation id
    CHECK(ids_of(reader->list(f)).empty());
  }
}

TEST_CASE("a window of start times is exact to the microsecond: from created_after, before created_before") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  const int64_t t = kT0 + 10'000'500;  // mid-millisecond
  // Around t, in one millisecond and across several.
  std::vector<SagaRow> rows = {
      saga(id_at(t - 2000, 1), t - 2000),  // 0
      saga(id_at(t - 1, 2), t - 1),        // 1: the same millisecond as t, a µs before
      saga(id_at(t, 3), t),                // 2: exactly t
      saga(id_at(t + 1, 4), t + 1),        // 3
      saga(id_at(t + 3000, 5), t + 3000),  // 4
  };
  // 5: started before t, but its id is 50 ms ahead: the clock stepped back
  // after an earlier start, and the id generator kept to its last millisecond.
  rows.push_back(saga(id_at(t + 50'000, 6), t - 700));
  REQUIRE(append_and_wait(*log, {}, rows).is_ok());
  auto reader = test::open_store_reader(path);
  auto id = [&](size_t i) { return rows[i].id; };

  SagaFilter f;
  f.created_after = t;
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(4), id(3), id(2)});
  f.created_after = t + 1;
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(4), id(3)});
  f = {};
  f.created_before = t;
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(5), id(1), id(0)});
  f.created_before = t + 1;
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(5), id(2), id(1), id(0)});
  f.created_after = t - 1;
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(2), id(1)});
  f.created_after = t - 1000;
  f.created_before = t + 3001;
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(5), id(4), id(3), id(2), id(1)});
  f.limit = 2;
  f.after = id(4);
  CHECK(ids_of(reader->list(f)) == std::vector<std::string>{id(3), id(2)});
  f = {};
  f.created_after = t + 1;
  f.created_before = t + 1;
  CHECK(ids_of(reader->list(f)).empty());
  f.created_after = 0;
  f.created_before = {};
  CHECK(ids_of(reader->list(f)).size() == rows.size());
}

void set_status(const std::string& path, const std::string& id, const char* status) {
  const std::string sql = std::string("UPDATE sagas SET status = '") + status + "' WHERE id = '" + id + "'";
  if (test::testing_postgres()) {
    test::query_log(path, sql);
  } else {
    test::RawDb(path).exec(sql);
  }
}

TEST_CASE("counts by status include terminated and the oldest running or compensating saga") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  auto log = test::open_store(path);
  auto reader = test::open_store_reader(path);

  auto empty = reader->counts();
  REQUIRE(empty.is_ok());
  CHECK(empty->by_status.size() == 6);
  CHECK(empty->by_status.back() == std::pair<std::string, int64_t>{"terminated", 0});
  CHECK_FALSE(empty->oldest_unfinished_created_at.has_value());

  std::vector<SagaRow> rows = {
      saga(id_at(kT0, 1), kT0, SagaStatus::kStuck),  // the oldest, but stuck
      saga(id_at(kT0 + 1000, 2), kT0 + 1000, SagaStatus::kCompleted),
      saga(id_at(kT0 + 2000, 3), kT0 + 2000, SagaStatus::kCompensating),
      saga(id_at(kT0 + 3000, 4), kT0 + 3000, SagaStatus::kRunning),
      saga(id_at(kT0 + 4000, 5), kT0 + 4000, SagaStatus::kRunning),
      saga(id_at(kT0 + 5000, 6), kT0 + 5000, SagaStatus::kStuck),
  };
  REQUIRE(append_and_wait(*log, {}, rows).is_ok());
  set_status(path, rows[5].id, "terminated");

  auto counts = reader->counts();
  INFO(counts.status().to_string());
  REQUIRE(counts.is_ok());
  const std::vector<std::pair<std::string, int64_t>> want = {{"running", 2},     {"compensating", 1},
                                                             {"completed", 1},   {"compensated", 0},
                                                             {"stuck", 1},       {"terminated", 1}};
  CHECK(counts->by_status == want);
  CHECK(counts->oldest_unfinished_created_at == std::optional<int64_t>(kT0 + 2000));

  set_status(path, rows[2].id, "compensated");
  CHECK(reader->counts()->oldest_unfinished_created_at == std::optional<int64_t>(kT0 + 3000));
  CHECK(reader->count_by_status()->front() == std::pair<std::string, int64_t>{"running", 2});
}

TEST_CASE("SQLite plans each filter on an index") {
  if (test::testing_postgres()) return;  // PostgreSQL plans by its statistics
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  test::open_store(path)->close();
  // EXPLAIN QUERY PLAN rows: id, parent, notused, detail.
  auto plan = [&](unsigned shape) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    const std::string sql = "EXPLAIN QUERY PLAN " + sqlite_list_sql(shape, "id, status, created_at");
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string details;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      details += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
      details += " | ";
    }
    sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
    return details;
  };
  const std::string by_key = plan(kListKey);
  CHECK_MESSAGE(by_key.find("USING INDEX sqlite_autoindex_sagas") != std::string::npos, by_key);
  const std::string by_correlation = plan(kListCorrelation | kListAfter);
  CHECK_MESSAGE(by_correlation.find("USING INDEX sagas_by_correlation (correlation_id=? AND id<?)") !=
                    std::string::npos,
                by_correlation);
  const std::string by_time = plan(kListCreatedAfter | kListCreatedBefore);
  CHECK_MESSAGE(by_time.find("USING PRIMARY KEY (id>?)") != std::string::npos, by_time);
  const std::string by_status_and_time = plan(kListStatus | kListCreatedAfter);
  CHECK_MESSAGE(by_status_and_time.find("USING INDEX sagas_by_status (status=? AND id>?)") != std::string::npos,
                by_status_and_time);
  CHECK_MESSAGE(by_time.find("TEMP B-TREE") == std::string::npos, by_time);  // no sort
}

}  // namespace
}  // namespace usher
