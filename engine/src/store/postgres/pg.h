// A small RAII layer over libpq for the PostgreSQL store: a connection, a
// result, how PostgreSQL's errors map to usher's Status, and the text forms
// the store sends (array literals, microsecond times).
//
// libpq is used directly (libpqxx in Debian 12 is 6.4, older than pipeline
// mode). Every value goes over the wire in text format as a parameter, never
// spliced into SQL.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "usher/status.h"

namespace usher::pg {

// True for a libpq connection URI (postgresql:// or postgres://): the store
// location is PostgreSQL rather than a SQLite file path.
bool is_uri(std::string_view location);

// The URI as it may be shown in logs and errors: user, host, port and
// database, never the password.
std::string describe(const std::string& uri);

// Type OIDs (pg_type) for parameters PostgreSQL cannot infer.
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kTextOid = 25;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// Whether a statement's result is a success; otherwise its error as a Status:
//   - the store's own refusals (SQLSTATE UA001, UA002) and unique violations:
//     kAborted / kAlreadyExists, about one saga; a saga another node owns
//     (UA003) or a lapsed lease (UA004): kNotOwner;
//   - data and integrity errors (classes 22, 23): kInvalidArgument;
//   - errors in usher's SQL (class 42): kInternal;
//   - everything else (connection lost, server shutting down, out of
//     resources, serialization failures): kUnavailable, worth retrying.
Status check(const PGresult* result, PGconn* conn, const std::string& what);

// The connection's last error message, trimmed (libpq ends it with a newline).
std::string describe_error(PGconn* conn);

// The DETAIL of an error result ("" if none): usher_append names the saga there.
std::string error_detail(const PGresult* result);

class Connection {
 public:
  Connection() = default;
  // Connects with libpq's usual sources (the URI, PG* environment variables,
  // ~/.pgpass, sslmode). Unless the URI says otherwise, gives up connecting
  // after 5 s and on a peer that stops acknowledging after 10 s, and names
  // itself `application_name` in pg_stat_activity.
  static Result<Connection> open(const std::string& uri, const char* application_name);

  PGconn* get() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }
  bool broken() const { return !conn_ || PQstatus(conn_.get()) != CONNECTION_OK; }

  // Runs a statement with no parameters (DDL, BEGIN, a query; several in one
  // string are allowed), outside pipeline mode.
  Result<ResultPtr> exec(const std::string& sql, const std::string& what);
  // Runs a prepared statement with text parameters (nullopt: NULL), outside pipeline mode.
  Result<ResultPtr> exec_prepared(const char* name, const std::vector<std::optional<std::string>>& params,
                                  const std::string& what);
  // Prepares a statement; `types` gives its parameters' types where the SQL
  // does not imply them (an unused parameter), otherwise the server infers them.
  Status prepare(const char* name, const std::string& sql, const std::string& what, const std::vector<Oid>& types = {});

 private:
  struct Deleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, Deleter> conn_;
};

// Builds a PostgreSQL array literal ({"a","b",NULL}) element by element.
// Text is made storable first: PostgreSQL text holds neither NUL bytes nor
// invalid UTF-8, so those become U+FFFD, as SQLite's store does for JSON.
class ArrayLiteral {
 public:
  ArrayLiteral() { text_ = "{"; }
  void add(std::string_view text);
  void add(int64_t n);
  // A time in µs since the epoch, as timestamptz text (time_text).
  void add_time(int64_t us);
  void add_null();
  // Adds `text` or NULL when it is empty (how the log stores "none").
  void add_or_null(std::string_view text) { text.empty() ? add_null() : add(text); }
  // The literal; the builder is spent.
  std::string take();

 private:
  void separate();
  std::string text_;
  bool empty_ = true;
};

// µs since the Unix epoch as timestamptz input, "2026-12-06 10:11:39.954123+00":
// exact (a float would round the last microseconds), and parsed by the server
// for less than the arithmetic a bigint would need there.
std::string time_text(int64_t us);

// `text` as PostgreSQL can store it: unchanged when it is valid UTF-8 without
// NUL bytes, otherwise with each offending byte (or NUL) as U+FFFD.
std::string storable(std::string_view text);

// JSON text as jsonb can store it: jsonb refuses the escape \u0000, which
// JSON allows; it becomes \ufffd (U+FFFD), the rest is unchanged.
std::string storable_json(std::string json);

// True for a saga id as usher writes them: a lowercase canonical UUID.
// Anything else cannot name a saga, and is not sent to a uuid column.
bool is_saga_id(std::string_view id);

}  // namespace usher::pg
