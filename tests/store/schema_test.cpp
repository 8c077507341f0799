// Schema versions and forward migrations of the saga log file.
#include <doctest/doctest.h>

#include <fstream>

#include "store/open_store.h"
#include "store_test_util.h"

namespace usher {
namespace {

std::string schema_of(const std::string& path) {
  test::RawDb raw(path);
  return raw.text("SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema ORDER BY name)");
}

TEST_CASE("an empty file is migrated to the current schema version") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  std::ofstream(path).close();  // zero bytes: version 0
  {
    auto log = open_sqlite_store(path, Durability::kFull);
    INFO(log.status().to_string());
    REQUIRE(log.is_ok());
  }
  test::RawDb raw(path);
  CHECK(raw.integer("PRAGMA user_version") == kSagaLogSchemaVersion);
  CHECK(raw.integer("PRAGMA user_version") == 3);
  for (const char* table : {"saga_events", "sagas", "definitions", "usher_publications"}) {
    INFO(table);
    CHECK(raw.integer(std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '") + table +
                      "'") == 1);
  }
}

TEST_CASE("reopening a current log changes nothing") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  {
    auto log = open_sqlite_store(path, Durability::kFull);
    REQUIRE(log.is_ok());
    REQUIRE(test::append_and_wait(**log, {test::event(test::saga_id(1), 1, EventType::kSagaStarted)},
                                  {test::row(test::saga_id(1))})
                .is_ok());
  }
  const std::string before = schema_of(path);
  {
    auto log = open_sqlite_store(path, Durability::kNormal);
    REQUIRE(log.is_ok());
  }
  CHECK(schema_of(path) == before);
  auto reader = open_sqlite_reader(path, true);
  REQUIRE(reader.is_ok());
  auto saga = (*reader)->saga(test::saga_id(1));
  REQUIRE(saga.is_ok());
  CHECK(saga->has_value());
}

TEST_CASE("a log of a newer schema version is refused as data loss") {
  test::TempDir dir;
  const std::string path = dir.file("log.db");
  {
    test::RawDb raw(path);
    raw.exec("CREATE TABLE future (x); PRAGMA user_version = 99");
  }
  SUBCASE("by the writer") {
    auto log = open_sqlite_store(path, Durability::kFull);
    REQUIRE_FALSE(log.is_ok());
    CHECK(log.status().code() == StatusCode::kDataLoss);
    CHECK(log.status().message().find("99") != std::string::npos);
    CHECK(log.status().message().find("version 3") != std::string::npos);
    MESSAGE(log.status().to_string());
    test::RawDb raw(path);
    CHECK(raw.integer("PRAGMA user_version") == 99);  // untouched
  }
  SUBCASE("by a reader") {
    auto reader = open_sqlite_reader(path, true);
    REQUIRE_FALSE(reader.is_ok());
    CHECK(reader.status().code() == StatusCode::kDataLoss);
    CHECK(reader.status().message().find("99") != std::string::npos);
  }
}

TEST_CASE("a reader needs an existing log of the current version") {
  test::TempDir dir;
  SUBCASE("missing file") {
    auto reader = open_sqlite_reader(dir.file("missing.db"), true);
    CHECK(reader.status().code() == StatusCode::kNotFound);
    CHECK(reader.status().message().find("missing.db") != std::string::npos);
  }
  SUBCASE("empty file") {
    const std::string path = dir.file("empty.db");
    std::ofstream(path).close();
    auto reader = open_sqlite_reader(path, true);
    CHECK(reader.status().code() == StatusCode::kFailedPrecondition);
  }
  SUBCASE("not a database") {
    const std::string path = dir.file("text.db");
    std::ofstream(path) << "this is not an SQLite database, just some text that is long enough to have a header";
    auto reader = open_sqlite_reader(path, true);
    CHECK(reader.status().code() == StatusCode::kDataLoss);
    auto log = open_sqlite_store(path, Durability::kFull);
    CHECK(log.status().code() == StatusCode::kDataLoss);
  }
}

}  // namespace
}  // namespace usher
