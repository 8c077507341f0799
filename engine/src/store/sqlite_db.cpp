#include "store/sqlite_db.h"

#include <mutex>

namespace usher::sqlite {

Status to_status(int rc, sqlite3* db, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::ok();
  // The connection's message is more precise than sqlite3_errstr (it names the
  // constraint or the file) but only if it belongs to this error.
  std::string detail = (db != nullptr && sqlite3_extended_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = std::string(what) + ": " + detail;
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return Status::already_exists(std::move(message));
      }
      return Status::invalid_argument(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
    case SQLITE_INTERRUPT:
      return Status::unavailable(std::move(message));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::data_loss(std::move(message));
    default:
      return Status::internal(std::move(message));
  }
}

// SQLite counts every allocation under one global mutex unless told not to;
// the log writer allocates for every row it writes, so the count (which usher
// never reads) was the writer's most contended lock. It can only be turned
// off before SQLite initialises; if the program embedding usher already used
// SQLite, the call is refused and nothing changes.
namespace {
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}
}  // namespace

Result<Connection> Connection::open(const std::string& path, int flags, const std::string& vfs) {
  configure_sqlite_once();
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs.empty() ? nullptr : vfs.c_str());
  // sqlite3_open_v2 hands back a handle even on failure, for its message.
  Connection conn(db);
  if (rc != SQLITE_OK) return to_status(db ? sqlite3_extended_errcode(db) : rc, db, "open saga log " + path);
  sqlite3_extended_result_codes(db, 1);
  return conn;
}

void Connection::close() {
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

Status Connection::exec(const char* sql, std::string_view what) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::ok();
  Status status = to_status(sqlite3_extended_errcode(db_), db_, what);
  sqlite3_free(error);
  return status;
}

Result<Statement> Connection::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return to_status(sqlite3_extended_errcode(db_), db_, "prepare \"" + std::string(sql.substr(0, 60)) + "…\"");
  }
  return Statement(stmt);
}

Result<int64_t> Connection::query_int(const char* sql, std::string_view what) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.status();
  int rc = stmt->step();
  if (rc == SQLITE_ROW) return stmt->int64(0);
  if (rc == SQLITE_DONE) return Status::internal(std::string(what) + ": no row");
  return to_status(sqlite3_extended_errcode(db_), db_, what);
}

Result<std::string> Connection::query_text(const char* sql, std::string_view what) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.status();
  int rc = stmt->step();
  if (rc == SQLITE_ROW) return std::string(stmt->text(0));
  if (rc == SQLITE_DONE) return Status::internal(std::string(what) + ": no row");
  return to_status(sqlite3_extended_errcode(db_), db_, what);
}

}  // namespace usher::sqlite
