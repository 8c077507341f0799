// The PostgreSQL saga log's schema version and its forward migrations, as
// schema.h is for SQLite.
//
// The version lives in the one-row table usher_schema (absent: version 0, an
// empty database). migrate() applies every missing step in one transaction
// under an advisory lock, so two `usher serve` or `usher migrate` processes
// starting together on a new database do not both create it, and a failure
// leaves the previous version intact (PostgreSQL's DDL is transactional).
#pragma once

#include <string>

#include "store/postgres/pg.h"

namespace usher::pg {

// Brings the database up to kPostgresSchemaVersion. A newer version is refused
// with kDataLoss: this build cannot know what it holds. `where` names the
// database in messages (describe(uri)).
Status migrate(Connection& db, const std::string& where);

// Ok if the database is exactly at kPostgresSchemaVersion. Newer -> kDataLoss;
// older (an empty database included) -> kFailedPrecondition, naming
// `usher migrate`.
Status check_version(Connection& db, const std::string& where);

}  // namespace usher::pg
