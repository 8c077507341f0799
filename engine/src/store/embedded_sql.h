// The saga log's schemas, embedded at build time from schemas/ (see
// engine/CMakeLists.txt): each is the migration from an empty database to
// schema version 1 of its store.
#pragma once

namespace usher::schema {

extern const char* const kSagaLogSql;          // schemas/saga-log.sql (SQLite)
extern const char* const kSagaLogPostgresSql;  // schemas/saga-log-postgresql.sql

}  // namespace usher::schema
