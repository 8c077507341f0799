// PublicationStore over its own SQLite connection on the log file
// (usher_publications, schemas/saga-log-3.sql). The store's writer thread
// writes the same file, so a save waits for its commit (the busy timeout)
// rather than failing; WAL lets reads go on beside it.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "store/publication_store.h"
#include "store/schema.h"
#include "store/sqlite_db.h"

namespace usher {
namespace {

// A save waits this long for the writer's transaction (a group commit takes
// milliseconds; a checkpoint or a migration longer) before kUnavailable.
constexpr int kBusyTimeoutMs = 5000;

// Only forward: the WHERE leaves a stored position that is not lower alone,
// so a late or repeated save never moves a publication back (and writes
// nothing, so costs no sync).
constexpr const char* kSave =
    "INSERT INTO usher_publications (name, position, updated_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at"
    " WHERE excluded.position > usher_publications.position";
constexpr const char* kPosition = "SELECT position FROM usher_publications WHERE name = ?1";

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class SqlitePublicationStore final : public PublicationStore {
 public:
  SqlitePublicationStore(std::string path, sqlite::Connection db) : path_(std::move(path)), db_(std::move(db)) {}

  Status prepare_statements() {
    for (auto [stmt, sql] : {std::pair{&save_, kSave}, std::pair{&position_, kPosition}}) {
      auto prepared = db_.prepare(sql);
      if (!prepared) return prepared.status();
      *stmt = std::move(*prepared);
    }
    return Status::ok();
  }

  // One process has a SQLite log (the store's writer holds it), so its
  // publisher has no rival to keep out.
  Result<bool> claim(const std::string&) override { return true; }

  Result<int64_t> position(const std::string& name) override {
    sqlite::ResetOnExit reset(position_);
    position_.bind(1, name);
    const int rc = position_.step();
    if (rc == SQLITE_DONE) return int64_t{0};
    if (rc != SQLITE_ROW) return error(rc, "read the position of publication " + name);
    return position_.int64(0);
  }

  Status save(const std::string& name, int64_t position) override {
    sqlite::ResetOnExit reset(save_);
    save_.bind(1, name);
    save_.bind(2, position);
    save_.bind(3, now_us());
    const int rc = save_.step();
    if (rc != SQLITE_DONE) return error(rc, "save the position of publication " + name);
    return Status::ok();
  }

 private:
  Status error(int rc, const std::string& what) const { return sqlite::to_status(rc, db_.get(), what + " in " + path_); }

  const std::string path_;
  // Declared first so the statements are finalized before it closes.
  sqlite::Connection db_;
  sqlite::Statement save_;
  sqlite::Statement position_;
};

}  // namespace

Result<std::unique_ptr<PublicationStore>> open_sqlite_publication_store(const std::string& path) {
  // Without this check SQLite reports only "unable to open database file".
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return ec ? Status::unavailable("cannot access saga log " + path + ": " + ec.message())
              : Status::not_found("saga log " + path + " does not exist");
  }
  auto db = sqlite::Connection::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  if (!db) return db.status();
  sqlite3_busy_timeout(db->get(), kBusyTimeoutMs);
  // The log is in WAL already (its writer set it, and that lasts in the
  // file); FULL syncs the WAL at each commit, so a saved position survives a
  // power loss. The writer alone checkpoints, when it has released its
  // appends (sqlite_saga_store.cpp): a save never does it in passing.
  const std::string what = "configure the publication positions of " + path;
  if (Status s = db->exec("PRAGMA synchronous = FULL", what); !s) return s;
  sqlite3_wal_autocheckpoint(db->get(), 0);
  if (Status s = schema::check_version(*db, path); !s) return s;
  auto store = std::make_unique<SqlitePublicationStore>(path, std::move(*db));
  if (Status s = store->prepare_statements(); !s) return s;
  return std::unique_ptr<PublicationStore>(std::move(store));
}

}  // namespace usher
