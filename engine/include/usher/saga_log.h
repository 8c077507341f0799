// Where a saga log lives, as `--db`, `db:` in usher.yaml and
// EngineOptions::db_path name it: a SQLite file path, or a PostgreSQL
// connection URI (postgresql://user@host:5432/usher?sslmode=require).
#pragma once

#include <string>
#include <string_view>

#include "usher/status.h"

namespace usher {

// The schema versions this usher writes: SQLite (schemas/saga-log.sql, then
// -2.sql: the status `terminated`, an index of correlation ids, then -3.sql:
// publication positions) and PostgreSQL (schemas/saga-log-postgresql.sql,
// then -2.sql: several nodes, then -3.sql: as SQLite's -2.sql, then -4.sql:
// as SQLite's -3.sql).
inline constexpr int kSagaLogSchemaVersion = 3;
inline constexpr int kPostgresSchemaVersion = 4;

// True for a PostgreSQL URI (postgresql:// or postgres://).
bool is_postgres_location(std::string_view location);

// The location as it may be printed or logged: a URI loses its password.
std::string describe_saga_log(const std::string& location);

// Creates the log's schema, or upgrades it to the version this usher writes
// (`usher migrate`); a log of a newer version is refused with kDataLoss.
Status migrate_saga_log(const std::string& location);

}  // namespace usher
