// A small RAII layer over the SQLite C API: a connection, a prepared statement,
// and the translation of SQLite result codes into usher Status codes.
//
// Neither class is thread-safe; each is used by one thread at a time (the
// connections are opened with SQLITE_OPEN_NOMUTEX for that reason).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "usher/status.h"

namespace usher::sqlite {

// Maps a SQLite result code to the Status a caller can act on:
//   UNIQUE / PRIMARY KEY constraint      -> kAlreadyExists (do not retry)
//   other constraints (CHECK, NOT NULL)  -> kInvalidArgument
//   BUSY, LOCKED, IOERR, FULL, CANTOPEN… -> kUnavailable (retrying later may work)
//   CORRUPT, NOTADB                      -> kDataLoss
//   anything else                        -> kInternal (a bug in the SQL or its use)
// `what` names the operation, e.g. "append to saga log /var/lib/usher.db".
Status to_status(int rc, sqlite3* db, std::string_view what);

class Statement {
 public:
  Statement() = default;
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept {
    if (this != &other) {
      sqlite3_finalize(stmt_);
      stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  sqlite3_stmt* get() const { return stmt_; }
  explicit operator bool() const { return stmt_ != nullptr; }

  // Text is bound without a copy (SQLITE_STATIC): the caller keeps it alive
  // until the statement has been stepped. Every parameter is bound again before
  // each step, so a stale pointer left from a previous use is never read.
  void bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  }
  void bind(int index, const char* text) { sqlite3_bind_text(stmt_, index, text, -1, SQLITE_STATIC); }
  void bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void bind_null(int index) { sqlite3_bind_null(stmt_, index); }
  // The log stores "none" as NULL, not as an empty string.
  void bind_or_null(int index, std::string_view text) {
    if (text.empty()) {
      bind_null(index);
    } else {
      bind(index, text);
    }
  }

  int step() { return sqlite3_step(stmt_); }
  void reset() { sqlite3_reset(stmt_); }

  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  // Valid until the next step or reset; empty for NULL.
  std::string_view text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string_view();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when the scope ends, however it ends, so a statement never
// keeps a read transaction open (which would stop WAL checkpoints) and never
// holds stale bindings into the next use.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& stmt) : stmt_(stmt) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { stmt_.reset(); }

 private:
  Statement& stmt_;
};

class Connection {
 public:
  Connection() = default;
  Connection(Connection&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Connection& operator=(Connection&& other) noexcept {
    if (this != &other) {
      close();
      db_ = std::exchange(other.db_, nullptr);
    }
    return *this;
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(); }

  // Opens with extended result codes on; `flags` are SQLITE_OPEN_* flags.
  // `vfs` names a registered SQLite VFS; empty = SQLite's default.
  static Result<Connection> open(const std::string& path, int flags, const std::string& vfs = {});
  // Statements must all be finalized first; sqlite3_close_v2 defers the close
  // otherwise, which would keep the file open.
  void close();

  sqlite3* get() const { return db_; }

  // Runs one or more statements that return no rows worth keeping.
  Status exec(const char* sql, std::string_view what);
  // Prepared once and kept (SQLITE_PREPARE_PERSISTENT): for the statements a
  // connection reuses for its whole life.
  Result<Statement> prepare(std::string_view sql);
  // The first column of the first row, e.g. of a PRAGMA.
  Result<int64_t> query_int(const char* sql, std::string_view what);
  Result<std::string> query_text(const char* sql, std::string_view what);

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

}  // namespace usher::sqlite
