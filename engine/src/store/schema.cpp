#include "store/schema.h"

#include <array>

#include "store/embedded_sql.h"
#include "store/saga_store.h"

namespace usher::schema {
namespace {

// kMigrations[i] takes the database from version i to i + 1.
const std::array<const char*, 3> kMigrations = {kSagaLogSql, kSagaLogSql2, kSagaLogSql3};
static_assert(std::tuple_size_v<decltype(kMigrations)> == kSagaLogSchemaVersion, "one migration step per schema version");

Status too_new(const std::string& path, int64_t version) {
  return Status::data_loss("saga log " + path + " has schema version " + std::to_string(version) +
                           ", newer than version " + std::to_string(kSagaLogSchemaVersion) +
                           " that this usher understands; open it with a newer usher");
}

Result<int64_t> user_version(sqlite::Connection& db, const std::string& path) {
  return db.query_int("PRAGMA user_version", "read schema version of " + path);
}

}  // namespace

Status migrate(sqlite::Connection& db, const std::string& path) {
  auto before = user_version(db, path);
  if (!before) return before.status();
  if (*before > kSagaLogSchemaVersion) return too_new(path, *before);
  if (*before == kSagaLogSchemaVersion) return Status::ok();

  const std::string what = "migrate saga log " + path;
  if (Status s = db.exec("BEGIN IMMEDIATE", what); !s) return s;
  auto apply = [&]() -> Status {
    // Read again under the write lock: another process may have migrated since.
    auto version = user_version(db, path);
    if (!version) return version.status();
    if (*version > kSagaLogSchemaVersion) return too_new(path, *version);
    for (int64_t v = *version; v < kSagaLogSchemaVersion; ++v) {
      std::string step = what + " from version " + std::to_string(v) + " to " + std::to_string(v + 1);
      if (Status s = db.exec(kMigrations[static_cast<size_t>(v)], step); !s) return s;
      std::string set = "PRAGMA user_version = " + std::to_string(v + 1);
      if (Status s = db.exec(set.c_str(), step); !s) return s;
    }
    return db.exec("COMMIT", what);
  };
  Status status = apply();
  if (!status && sqlite3_get_autocommit(db.get()) == 0) (void)db.exec("ROLLBACK", what);
  return status;
}

Status check_version(sqlite::Connection& db, const std::string& path) {
  auto version = user_version(db, path);
  if (!version) return version.status();
  if (*version > kSagaLogSchemaVersion) return too_new(path, *version);
  if (*version < kSagaLogSchemaVersion) {
    return Status::failed_precondition("saga log " + path + " has schema version " + std::to_string(*version) +
                                       ", older than version " + std::to_string(kSagaLogSchemaVersion) +
                                       "; open it once with the engine to migrate it");
  }
  return Status::ok();
}

}  // namespace usher::schema
