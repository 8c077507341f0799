// The saga log's schemas, embedded at build time from schemas/ (see
// engine/CMakeLists.txt): the migrations of each store's schema, from an
// empty database to version 1, then from each version to the next.
#pragma once

namespace usher::schema {

extern const char* const kSagaLogSql;          // schemas/saga-log.sql (SQLite, to version 1)
extern const char* const kSagaLogSql2;         // schemas/saga-log-2.sql (1 to 2: terminated, correlation ids)
extern const char* const kSagaLogSql3;         // schemas/saga-log-3.sql (2 to 3: publication positions)
extern const char* const kSagaLogPostgresSql;   // schemas/saga-log-postgresql.sql (to version 1)
extern const char* const kSagaLogPostgresSql2;  // schemas/saga-log-postgresql-2.sql (1 to 2: nodes)
extern const char* const kSagaLogPostgresSql3;  // schemas/saga-log-postgresql-3.sql (2 to 3: terminated, correlation ids)
extern const char* const kSagaLogPostgresSql4;  // schemas/saga-log-postgresql-4.sql (3 to 4: publication positions)

}  // namespace usher::schema
