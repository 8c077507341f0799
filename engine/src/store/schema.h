// The saga log's schema version and its forward migrations.
//
// The version lives in PRAGMA user_version. Migration i (0-based) takes a
// database from version i to i + 1; version 0 is an empty file. The writer
// applies every missing step in one IMMEDIATE transaction on open, so a crash
// mid-migration leaves the previous version intact and two processes opening
// the same new file do not both migrate it. Readers never migrate.
#pragma once

#include <string>

#include "store/sqlite_db.h"

namespace usher::schema {

// Brings the database up to kSagaLogSchemaVersion. A database with a newer
// version is refused with kDataLoss: this build cannot know what it holds.
Status migrate(sqlite::Connection& db, const std::string& path);

// For readers: ok if the database is exactly at kSagaLogSchemaVersion.
// Newer -> kDataLoss; older (including an empty file) -> kFailedPrecondition.
Status check_version(sqlite::Connection& db, const std::string& path);

}  // namespace usher::schema
