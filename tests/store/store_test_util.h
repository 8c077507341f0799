// Helpers shared by the saga log tests: a temporary directory that cleans up
// after itself, and small builders for events and rows.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include "store/open_store.h"
#include "store/saga_store.h"
#include "support/temp_dir.h"
#include "support/test_store.h"

namespace usher::test {

// The contract tests (saga_store_test.cpp, saga_store_reader_test.cpp) run
// against the store USHER_TEST_STORE names (support/test_store.h); a new
// SagaStore adds itself there, and tests/store/CMakeLists.txt runs the suite
// once for it, so it inherits every contract test.
// The store under test at `location`; opening the same location again reopens the same log.
inline std::unique_ptr<SagaStore> open_store(const std::string& location) {
  auto store = usher::open_store(saga_log_at(location), {});
  INFO(store.status().to_string());
  REQUIRE(store.is_ok());
  return std::move(store).value();
}

// The SQLite store itself, for the tests of what it adds to the contract.
inline std::unique_ptr<SagaStore> open_sqlite_log(const std::string& path, Durability d = Durability::kFull) {
  auto log = open_sqlite_store(path, d);
  INFO(log.status().to_string());
  REQUIRE(log.is_ok());
  return std::move(log).value();
}

inline std::unique_ptr<SagaStoreReader> open_sqlite_log_reader(const std::string& path, bool read_only = true) {
  auto reader = open_sqlite_reader(path, read_only);
  INFO(reader.status().to_string());
  REQUIRE(reader.is_ok());
  return std::move(reader).value();
}

// A reader of the store under test at `location`, without a writer of its own.
inline std::unique_ptr<SagaStoreReader> open_store_reader(const std::string& location) {
  auto reader = usher::open_store_reader(saga_log_at(location), true);
  INFO(reader.status().to_string());
  REQUIRE(reader.is_ok());
  return std::move(reader).value();
}


// Saga ids as usher makes them (UUIDv7, lowercase), sorting by creation order.
inline std::string saga_id(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "0190a000-0000-7000-8000-%012d", n);
  return buf;
}

inline Event event(const std::string& saga, int64_t seq, EventType type, std::string step = {},
                   Json data = Json::object()) {
  Event e;
  e.saga_id = saga;
  e.seq = seq;
  e.type = type;
  e.step = std::move(step);
  e.data = std::move(data);
  e.occurred_at = 1'700'000'000'000'000 + seq * 1000;
  e.causation_seq = seq - 1;
  return e;
}

inline SagaRow row(const std::string& id, SagaStatus status = SagaStatus::kRunning,
                   const std::string& workflow = "book-ticket", int64_t last_seq = 1) {
  SagaRow r;
  r.id = id;
  r.workflow = workflow;
  r.version = 3;
  r.definition_hash = "sha256:abc";
  r.status = status;
  r.created_at = 1'700'000'000'000'000;
  r.updated_at = r.created_at + last_seq * 1000;
  r.last_seq = last_seq;
  return r;
}

// Appends and waits for the group's own outcome.
inline Status append_and_wait(SagaStore& log, std::vector<Event> events, std::vector<SagaRow> rows) {
  std::promise<Status> outcome;
  auto result = outcome.get_future();
  log.append(std::move(events), std::move(rows), [&](Status s) { outcome.set_value(std::move(s)); });
  return result.get();
}

inline void check_same(const Event& got, const Event& want) {
  CHECK(got.saga_id == want.saga_id);
  CHECK(got.seq == want.seq);
  CHECK(got.type == want.type);
  CHECK(got.step == want.step);
  CHECK(got.data == want.data);
  CHECK(got.occurred_at == want.occurred_at);
  CHECK(got.causation_seq == want.causation_seq);
}

inline void check_same(const SagaRow& got, const SagaRow& want) {
  CHECK(got.id == want.id);
  CHECK(got.workflow == want.workflow);
  CHECK(got.version == want.version);
  CHECK(got.definition_hash == want.definition_hash);
  CHECK(got.status == want.status);
  CHECK(got.current_step == want.current_step);
  CHECK(got.idempotency_key == want.idempotency_key);
  CHECK(got.correlation_id == want.correlation_id);
  CHECK(got.created_at == want.created_at);
  CHECK(got.updated_at == want.updated_at);
  CHECK(got.deadline == want.deadline);
  CHECK(got.last_error == want.last_error);
  CHECK(got.last_seq == want.last_seq);
}

// A raw connection, for looking at the file the way another tool would.
class RawDb {
 public:
  explicit RawDb(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) == SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql << ": " << (error ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  }
  // The first column of the first row as text ("" for NULL or no row).
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  int64_t integer(const std::string& sql) {
    std::string t = text(sql);
    return t.empty() ? 0 : std::stoll(t);
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace usher::test
