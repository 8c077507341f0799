#include "store/postgres/pg_schema.h"

#include <array>
#include <string_view>

#include "store/embedded_sql.h"
#include "store/saga_store.h"

namespace usher::pg {
namespace {

// kMigrations[i] takes the database from version i to i + 1.
const std::array<const char*, 4> kMigrations = {schema::kSagaLogPostgresSql, schema::kSagaLogPostgresSql2,
                                                schema::kSagaLogPostgresSql3, schema::kSagaLogPostgresSql4};
static_assert(std::tuple_size_v<decltype(kMigrations)> == kPostgresSchemaVersion,
              "one migration step per schema version");

// Any constant both sides agree on: the key of the advisory lock migrations take.
constexpr const char* kLockMigrations = "SELECT pg_advisory_xact_lock(7571826530541)";

Status too_new(const std::string& where, int64_t version) {
  return Status::data_loss("saga log " + where + " has schema version " + std::to_string(version) +
                           ", newer than version " + std::to_string(kPostgresSchemaVersion) +
                           " that this usher understands; use a newer usher");
}

Result<int64_t> schema_version(Connection& db, const std::string& where) {
  const std::string what = "read schema version of " + where;
  // Two statements: a query naming a table that does not exist fails to parse.
  auto exists = db.exec("SELECT to_regclass('usher_schema') IS NOT NULL", what);
  if (!exists) return exists.status();
  if (std::string_view(PQgetvalue(exists->get(), 0, 0)) != "t") return int64_t{0};
  auto r = db.exec("SELECT max(version) FROM usher_schema", what);
  if (!r) return r.status();
  if (PQntuples(r->get()) != 1 || PQgetisnull(r->get(), 0, 0)) return int64_t{0};
  return std::stoll(PQgetvalue(r->get(), 0, 0));
}

}  // namespace

Status migrate(Connection& db, const std::string& where) {
  const std::string what = "migrate saga log " + where;
  if (auto begun = db.exec("BEGIN", what); !begun) return begun.status();
  auto apply = [&]() -> Status {
    if (auto locked = db.exec(kLockMigrations, what); !locked) return locked.status();
    // Read under the lock: another process may have migrated meanwhile.
    auto version = schema_version(db, where);
    if (!version) return version.status();
    if (*version > kPostgresSchemaVersion) return too_new(where, *version);
    for (int64_t v = *version; v < kPostgresSchemaVersion; ++v) {
      const std::string step = what + " from version " + std::to_string(v) + " to " + std::to_string(v + 1);
      if (auto done = db.exec(kMigrations[static_cast<size_t>(v)], step); !done) return done.status();
      if (auto set = db.exec("UPDATE usher_schema SET version = " + std::to_string(v + 1), step); !set) {
        return set.status();
      }
    }
    auto committed = db.exec("COMMIT", what);
    return committed ? Status::ok() : committed.status();
  };
  Status status = apply();
  if (!status && PQtransactionStatus(db.get()) != PQTRANS_IDLE) (void)db.exec("ROLLBACK", what);
  return status;
}

Status check_version(Connection& db, const std::string& where) {
  auto version = schema_version(db, where);
  if (!version) return version.status();
  if (*version > kPostgresSchemaVersion) return too_new(where, *version);
  if (*version < kPostgresSchemaVersion) {
    return Status::failed_precondition("saga log " + where + " has schema version " + std::to_string(*version) +
                                       ", older than version " + std::to_string(kPostgresSchemaVersion) +
                                       "; run `usher migrate --db URI` (or `usher serve` without --no-migrate)");
  }
  return Status::ok();
}

}  // namespace usher::pg
