// Which saga store the tests run against, and where a test's log lives on it.
//
// USHER_TEST_STORE=postgres runs a suite against PostgreSQL (each test
// directory's CMakeLists.txt adds a `<suite>_postgres` ctest entry that sets
// it); unset or "sqlite", against SQLite files. A test names its log by a
// file path in its TempDir, as it always did, and saga_log_at() turns that
// into the location the store under test uses.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "support/pg_cluster.h"

namespace usher::test {

enum class StoreKind { kSqlite, kPostgres };

inline StoreKind store_under_test() {
  const char* chosen = std::getenv("USHER_TEST_STORE");
  if (chosen == nullptr || std::string_view(chosen) == "sqlite") return StoreKind::kSqlite;
  if (std::string_view(chosen) == "postgres") return StoreKind::kPostgres;
  throw std::invalid_argument(std::string("USHER_TEST_STORE=") + chosen + " is not a store these tests know");
}

inline bool testing_postgres() { return store_under_test() == StoreKind::kPostgres; }

// The log at `sqlite_path`: that path for SQLite; for PostgreSQL a database
// of its own in this process's throwaway cluster (PgCluster::shared), named
// after the path, so the same path reopens the same log and each test starts
// with an empty one.
inline std::string pg_database_at(const std::string& sqlite_path) {
  char name[32];
  std::snprintf(name, sizeof name, "t%016zx", std::hash<std::string>{}(sqlite_path));
  return name;
}

inline std::string saga_log_at(const std::string& sqlite_path) {
  if (!testing_postgres()) return sqlite_path;
  const std::string name = pg_database_at(sqlite_path);
  PgCluster::shared().create_database(name);
  return PgCluster::shared().uri(name);
}

// PostgreSQL only: runs `sql` on the log saga_log_at(sqlite_path) names and
// returns the first column of the first row ("" for none), as PgCluster::query.
inline std::string query_log(const std::string& sqlite_path, const std::string& sql) {
  return PgCluster::shared().query(pg_database_at(sqlite_path), sql);
}

}  // namespace usher::test
