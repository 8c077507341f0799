// The saga log's schemas, embedded at build time from schemas/ (see
// engine/CMakeLists.txt): the migrations of each store's schema, from an
// empty database to version 1, then from each version to the next.
#pragma once

namespace usher::schema {

extern const char* const kSagaLogSql;          // schemas/saga-log.sql (SQLite)
extern const char* const kSagaLogPostgresSql;   // schemas/saga-log-postgresql.sql (to version 1)
extern const char* const kSagaLogPostgresSql2;  // schemas/saga-log-postgresql-2.sql (1 to 2: nodes)

}  // namespace usher::schema
